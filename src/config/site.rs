//! Readers for `[[site]]`: host patterns, and the site's routes (read by
//! `config/route.rs`) and CORS.
//!
//! In: the `site` list and the names of the defined upstream pools.
//! Out: `Site`s whose host patterns are lowercased and unique across the
//! file, each with its routes.

use std::collections::HashMap;

use super::route::{route, ROUTE_KEYS};
use super::schema::{HostPattern, Site};
use super::walk::{Ctx, Entry, Fields, Span};

const SITE_KEYS: &[&str] = &["hosts", "route", "cors", "error_pages"];

pub(crate) fn sites(ctx: &mut Ctx, entry: Option<Entry>, upstreams: &[String]) -> Vec<Site> {
    let Some(entry) = entry else {
        return Vec::new();
    };
    let mut claimed: HashMap<HostPattern, String> = HashMap::new();
    let mut sites = Vec::new();
    for fields in ctx.tables(&entry, SITE_KEYS) {
        let hosts = hosts(ctx, &fields, &mut claimed);
        let mut routes = Vec::new();
        let mut paths: HashMap<String, String> = HashMap::new();
        if let Some(list) = fields.get("route") {
            for route_fields in ctx.tables(&list, ROUTE_KEYS) {
                if let Some(route) = route(ctx, route_fields, upstreams, &mut paths) {
                    routes.push(route);
                }
            }
        }
        let cors = fields.get("cors").and_then(|e| super::cors::cors(ctx, &e));
        let error_pages = fields.get("error_pages").and_then(|e| error_pages(ctx, &e));
        fields.finish(ctx);
        sites.push(Site {
            hosts,
            routes,
            cors,
            error_pages,
        });
    }
    sites
}

fn hosts(
    ctx: &mut Ctx,
    fields: &Fields,
    claimed: &mut HashMap<HostPattern, String>,
) -> Vec<HostPattern> {
    let written: Vec<(String, String, Span)> = match fields.get("hosts") {
        None => vec![(fields.key("hosts"), "*".to_string(), fields.span.clone())],
        Some(e) => {
            let list = ctx.strings(&e).unwrap_or_default();
            if e.item.as_array().is_some_and(|a| a.is_empty()) {
                let fix = "leave `hosts` out to match every host, or list names".to_string();
                ctx.error(&e.span, &e.key, "is empty".into(), Some(fix));
            }
            list
        }
    };
    let mut patterns = Vec::new();
    for (key, text, span) in written {
        let Some(pattern) = host_pattern(ctx, &key, &text, &span) else {
            continue;
        };
        if let Some(owner) = claimed.get(&pattern) {
            let message = format!("{text:?} is already claimed by {owner}");
            let fix = "serve each host from one [[site]]; merge the two sites' routes".to_string();
            ctx.error(&span, &key, message, Some(fix));
            continue;
        }
        claimed.insert(pattern.clone(), fields.path.clone());
        patterns.push(pattern);
    }
    patterns
}

fn host_pattern(ctx: &mut Ctx, key: &str, text: &str, span: &Span) -> Option<HostPattern> {
    let host = text.to_ascii_lowercase();
    if host == "*" {
        return Some(HostPattern::Any);
    }
    let (name, wildcard) = match host.strip_prefix("*.") {
        Some(rest) => (rest, true),
        None => (host.as_str(), false),
    };
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.chars().any(char::is_whitespace) {
        Some("contains a space")
    } else if name.contains(':') {
        Some("contains a port; ports belong in server.listen")
    } else if name.contains('*') {
        Some("`*` is only allowed alone or as a leading `*.`")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        Some("is not a host name")
    } else {
        None
    };
    if let Some(problem) = problem {
        let fix = "write a host name, e.g. \"example.com\", \"*.example.com\" or \"*\"";
        ctx.error(span, key, format!("{text:?} {problem}"), Some(fix.into()));
        return None;
    }
    Some(if wildcard {
        HostPattern::Wildcard(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_string())
    })
}

/// `error_pages`: a directory holding at least one page wharf would use,
/// each small enough to keep in memory.
fn error_pages(ctx: &mut Ctx, entry: &Entry) -> Option<std::path::PathBuf> {
    let dir = ctx.string(entry)?;
    let path = super::route::static_dir(ctx, entry, &dir)?;
    let problem = match crate::site::error_pages::ErrorPages::load(&path) {
        Ok(pages) if pages.is_empty() => format!(
            "`{}` holds no error page: none of 404.html, 502.html, 4xx.html, 5xx.html...",
            path.display()
        ),
        Ok(_) => return Some(path),
        Err(error) => format!("cannot read `{}`: {error}", path.display()),
    };
    let fix = "name the pages after the status they answer (502.html), or a class (5xx.html)";
    ctx.error(&entry.span, &entry.key, problem, Some(fix.to_string()));
    None
}
