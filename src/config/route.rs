//! Readers for `[[site.route]]`.
//!
//! Out: routes that each have exactly one action with only the keys that
//! action uses, their `strip_prefix` and `[site.route.headers]`. Static
//! directories are checked here, once, so a typo fails `wharf check`
//! instead of turning into 404s at run time.

use std::collections::HashMap;
use std::path::PathBuf;

use super::error::closest;
use super::schema::{defaults, Action, BasicAuth, Route};
use super::walk::{Ctx, Entry, Fields};

pub(super) const ROUTE_KEYS: &[&str] = &[
    "path",
    "upstream",
    "static",
    "spa",
    "strip_prefix",
    "redirect",
    "status",
    "respond",
    "content_type",
    "headers",
    "basic_auth",
];
const ACTIONS: &[&str] = &["upstream", "static", "redirect", "respond"];
const REDIRECT_CODES: &[i64] = &[301, 302, 303, 307, 308];
const RESPOND_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

pub(super) fn route(
    ctx: &mut Ctx,
    fields: Fields,
    upstreams: &[String],
    paths: &mut HashMap<String, String>,
) -> Option<Route> {
    let path = match fields.get("path") {
        Some(e) => ctx.string(&e).and_then(|path| {
            if !path.starts_with('/') {
                let fix = format!("write \"/{}\"", path.trim_start_matches('/'));
                let message = format!("{path:?} does not start with `/`");
                ctx.error(&e.span, &e.key, message, Some(fix));
                return None;
            }
            if let Some(first) = paths.get(&path) {
                let message = format!("{path:?} is already routed by {first}");
                let fix = "remove one of the two routes".to_string();
                ctx.error(&e.span, &e.key, message, Some(fix));
                return None;
            }
            paths.insert(path.clone(), fields.path.clone());
            Some(path)
        }),
        None => {
            let fix = "add path = \"/\" (a prefix; \"/\" matches everything)".to_string();
            ctx.error(
                &fields.span,
                &fields.key("path"),
                "is missing".into(),
                Some(fix),
            );
            None
        }
    };
    let action = action(ctx, &fields, upstreams);
    let headers = route_headers(ctx, &fields);
    let basic_auth = fields.get("basic_auth").and_then(|e| basic_auth(ctx, &e));
    fields.finish(ctx);
    Some(Route {
        path: path?,
        action: action?,
        headers,
        basic_auth,
    })
}

fn action(ctx: &mut Ctx, fields: &Fields, upstreams: &[String]) -> Option<Action> {
    let mut written: Vec<Entry> = ACTIONS.iter().filter_map(|a| fields.get(a)).collect();
    written.sort_by_key(|e| e.key_span.as_ref().map(|r| r.start));
    let name = |e: &Entry| e.key.rsplit('.').next().unwrap_or_default().to_string();
    let chosen = match written.as_slice() {
        [] => {
            let message = "has no action".to_string();
            let fix = "set exactly one of upstream, static, redirect, respond".to_string();
            ctx.error(&fields.span, &fields.path, message, Some(fix));
            return None;
        }
        [one] => one.clone(),
        [first, rest @ ..] => {
            for extra in rest {
                let message = format!("`{}` and `{}` cannot both be set", name(first), name(extra));
                let fix = "split them into two routes with different paths".to_string();
                ctx.error(&extra.key_span, &extra.key, message, Some(fix));
            }
            return None;
        }
    };
    let kind = name(&chosen);
    let allowed: &[&str] = match kind.as_str() {
        "upstream" => &["strip_prefix"],
        "static" => &["spa"],
        "redirect" => &["status"],
        "respond" => &["status", "content_type"],
        _ => &[],
    };
    for extra in ["spa", "strip_prefix", "status", "content_type"] {
        if allowed.contains(&extra) {
            continue;
        }
        if let Some(e) = fields.get(extra) {
            let article = if kind == "upstream" { "an" } else { "a" };
            let message = format!("`{extra}` does not apply to {article} `{kind}` route");
            let fix = format!("remove `{extra}`");
            ctx.error(&e.key_span, &e.key, message, Some(fix));
        }
    }
    match kind.as_str() {
        "upstream" => {
            let upstream = ctx.string(&chosen)?;
            if !upstreams.contains(&upstream) {
                let names: Vec<&str> = upstreams.iter().map(String::as_str).collect();
                let fix = match (closest(&upstream, &names), names.is_empty()) {
                    (Some(near), _) => {
                        format!("did you mean `{near}`? defined: {}", names.join(", "))
                    }
                    (None, true) => format!("no upstreams are defined; add [upstream.{upstream}]"),
                    (None, false) => format!(
                        "define [upstream.{upstream}] or use one of: {}",
                        names.join(", ")
                    ),
                };
                let message = format!("no upstream named {upstream:?}");
                ctx.error(&chosen.span, &chosen.key, message, Some(fix));
                return None;
            }
            let strip_prefix = strip_prefix(ctx, fields)?;
            Some(Action::Proxy {
                upstream,
                strip_prefix,
            })
        }
        "static" => {
            let dir = ctx.string(&chosen)?;
            let root = static_dir(ctx, &chosen, &dir)?;
            let spa = fields
                .get("spa")
                .and_then(|e| ctx.boolean(&e))
                .unwrap_or(false);
            Some(Action::Static { root, spa })
        }
        "redirect" => {
            let to = ctx.string(&chosen)?;
            if !(to.starts_with('/') || to.starts_with("http://") || to.starts_with("https://")) {
                let message = format!("{to:?} is not a URL or an absolute path");
                let fix = "write e.g. \"https://example.com/new/\" or \"/new/\"".to_string();
                ctx.error(&chosen.span, &chosen.key, message, Some(fix));
            }
            let status = status(ctx, fields, defaults::REDIRECT_STATUS, Some(REDIRECT_CODES))?;
            Some(Action::Redirect { to, status })
        }
        _ => {
            let body = ctx.string(&chosen)?;
            let status = status(ctx, fields, defaults::RESPOND_STATUS, None)?;
            let content_type = match fields.get("content_type") {
                Some(e) => {
                    let value = ctx.string(&e)?;
                    if http::HeaderValue::from_str(&value).is_err() || value.is_empty() {
                        let message = format!("{value:?} is not a valid header value");
                        let fix = "write e.g. \"text/html; charset=utf-8\"".to_string();
                        ctx.error(&e.span, &e.key, message, Some(fix));
                    }
                    value
                }
                None => RESPOND_CONTENT_TYPE.to_string(),
            };
            Some(Action::Respond {
                status,
                body,
                content_type,
            })
        }
    }
}

/// `[site.route.headers]`: valid names and values, none of those wharf
/// must own (framing, `Date`, ids, HSTS), each name once.
fn route_headers(ctx: &mut Ctx, fields: &Fields) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let Some(e) = fields.get("headers") else {
        return headers;
    };
    let Some(table) = e.item.as_table_like() else {
        ctx.expected("a table", &e.key, e.item, &e.span);
        return headers;
    };
    for inner in Fields::new(table, &e.key, e.span.clone(), &[]).all() {
        let name = inner.key.rsplit('.').next().unwrap_or_default().to_string();
        let Some(value) = ctx.string(&inner) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        let problem = if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            Some((
                format!("{name:?} is not a header name"),
                "use letters, digits and - (e.g. \"Cache-Control\")".to_string(),
            ))
        } else if crate::route::headers::RESERVED.contains(&lower.as_str()) {
            let fix = match lower.as_str() {
                "strict-transport-security" => "set tls.hsts instead",
                "content-encoding" | "vary" => "wharf compresses answers itself; remove it",
                _ => "wharf sets it; remove it",
            };
            Some((
                format!("{name:?} cannot be set by a route"),
                fix.to_string(),
            ))
        } else if http::HeaderValue::from_str(&value).is_err() {
            Some((
                format!("{value:?} is not a valid header value"),
                "use visible ASCII; no line breaks".to_string(),
            ))
        } else if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some((
                format!("{name:?} is set twice (header names ignore case)"),
                "keep one".to_string(),
            ))
        } else {
            None
        };
        match problem {
            Some((message, fix)) => ctx.error(&inner.key_span, &inner.key, message, Some(fix)),
            None => headers.push((name, value)),
        }
    }
    headers
}

/// `strip_prefix`: a route on `/` would take nothing off.
fn strip_prefix(ctx: &mut Ctx, fields: &Fields) -> Option<bool> {
    let Some(e) = fields.get("strip_prefix") else {
        return Some(false);
    };
    let strip = ctx.boolean(&e)?;
    let path = fields
        .get("path")
        .and_then(|p| p.item.as_str().map(str::to_string));
    if strip && path.as_deref() == Some("/") {
        let message = "takes nothing off the path of a route on \"/\"".to_string();
        let fix = "remove strip_prefix, or give the route a longer path such as \"/api/\"";
        ctx.error(&e.span, &e.key, message, Some(fix.to_string()));
        return None;
    }
    Some(strip)
}

fn status(ctx: &mut Ctx, fields: &Fields, default: u16, codes: Option<&[i64]>) -> Option<u16> {
    let Some(e) = fields.get("status") else {
        return Some(default);
    };
    let code = ctx.integer(&e)?;
    let valid = match codes {
        Some(codes) => codes.contains(&code),
        None => (100..=599).contains(&code),
    };
    if !valid {
        let fix = match codes {
            Some(codes) => {
                let list: Vec<String> = codes.iter().map(i64::to_string).collect();
                format!("use one of {}", list.join(", "))
            }
            None => "use a status between 100 and 599".to_string(),
        };
        ctx.error(
            &e.span,
            &e.key,
            format!("{code} is not allowed here"),
            Some(fix),
        );
        return None;
    }
    u16::try_from(code).ok()
}

/// Resolves a static directory against the config file's directory.
pub(super) fn static_dir(ctx: &mut Ctx, entry: &Entry, dir: &str) -> Option<PathBuf> {
    // Drop `.` components so the printed config shows a clean path.
    let root: PathBuf = ctx
        .base_dir
        .join(dir)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let problem = match std::fs::metadata(&root) {
        Ok(meta) if meta.is_dir() => return Some(root),
        Ok(_) => format!("`{}` is not a directory", root.display()),
        Err(e) => format!("cannot open `{}`: {e}", root.display()),
    };
    let fix = format!(
        "create the directory or fix the path (relative paths start from {})",
        ctx.base_dir.display()
    );
    ctx.error(&entry.span, &entry.key, problem, Some(fix));
    None
}

const BASIC_AUTH_KEYS: &[&str] = &["realm", "users"];

/// `[site.route.basic_auth]`: a realm and at least one user, each with a
/// bcrypt hash (`wharf hash-password`, `htpasswd -nbB`, `caddy
/// hash-password`).
fn basic_auth(ctx: &mut Ctx, entry: &Entry) -> Option<BasicAuth> {
    let Some(table) = entry.item.as_table_like() else {
        ctx.expected("a table", &entry.key, entry.item, &entry.span);
        return None;
    };
    let fields = Fields::new(table, &entry.key, entry.span.clone(), BASIC_AUTH_KEYS);
    let realm = match fields.get("realm") {
        Some(e) => {
            let realm = ctx.string(&e)?;
            if realm.is_empty()
                || realm
                    .chars()
                    .any(|c| c.is_control() || c == '"' || c == '\\')
            {
                let fix = "write a short name without quotes, e.g. \"staging\"";
                ctx.error(
                    &e.span,
                    &e.key,
                    format!("{realm:?} cannot be a realm"),
                    Some(fix.into()),
                );
                return None;
            }
            realm
        }
        None => "restricted".to_string(),
    };
    let mut users = Vec::new();
    match fields.get("users") {
        Some(e) => match e.item.as_table_like() {
            Some(list) => {
                for user in Fields::new(list, &e.key, e.span.clone(), &[]).all() {
                    let name = user.key.rsplit('.').next().unwrap_or_default().to_string();
                    let Some(hash) = ctx.string(&user) else {
                        continue;
                    };
                    if name.is_empty() || name.contains(':') {
                        let fix = "a user name cannot be empty or contain `:`";
                        ctx.error(
                            &user.key_span,
                            &user.key,
                            format!("{name:?} is not a user name"),
                            Some(fix.into()),
                        );
                    } else if !crate::site::basic_auth::is_bcrypt(&hash) {
                        let fix = "give a bcrypt hash ($2b$...): `wharf hash-password` prints one";
                        ctx.error(
                            &user.span,
                            &user.key,
                            "is not a bcrypt hash".into(),
                            Some(fix.into()),
                        );
                    } else {
                        users.push((name, hash));
                    }
                }
                if list.is_empty() {
                    let fix =
                        "add a user: name = \"$2b$...\" (`wharf hash-password` makes the hash)";
                    ctx.error(&e.span, &e.key, "has no user".into(), Some(fix.into()));
                }
            }
            None => ctx.expected("a table", &e.key, e.item, &e.span),
        },
        None => {
            let fix = "add [site.route.basic_auth.users] with name = \"$2b$...\"";
            ctx.error(
                &entry.span,
                &fields.key("users"),
                "is missing".into(),
                Some(fix.into()),
            );
        }
    }
    fields.finish(ctx);
    (!users.is_empty()).then_some(BasicAuth { realm, users })
}
