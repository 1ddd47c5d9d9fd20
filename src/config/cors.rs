//! Reader for `[site.cors]`.
//!
//! In: the table under one `[[site]]`.
//! Out: a `Cors` whose origins are exact (`scheme://host[:port]`, lowercased)
//! or a lone `"*"`, whose methods are uppercase tokens and whose header
//! names are valid and lowercased, so the request path compares bytes.
//! A wildcard origin with credentials is refused: browsers reject it, and
//! reflecting any origin with credentials would be a hole.

use super::schema::{defaults, Cors};
use super::walk::{Ctx, Entry, Span};

const CORS_KEYS: &[&str] = &[
    "origins",
    "methods",
    "headers",
    "expose_headers",
    "credentials",
    "max_age",
];
const ORIGIN_FIX: &str = "write scheme://host[:port], e.g. \"https://app.example.com\"";

pub(crate) fn cors(ctx: &mut Ctx, entry: &Entry) -> Option<Cors> {
    let fields = ctx.table(entry, CORS_KEYS)?;
    let mut cors = Cors {
        origins: Vec::new(),
        methods: defaults::CORS_METHODS
            .iter()
            .map(|m| m.to_string())
            .collect(),
        headers: None,
        expose_headers: Vec::new(),
        credentials: false,
        max_age: None,
    };
    match fields.get("origins") {
        Some(e) => {
            let list = ctx.strings(&e).unwrap_or_default();
            let any = list.iter().any(|(_, text, _)| text == "*");
            if any && list.len() > 1 {
                let message = "\"*\" must be the only origin".to_string();
                let fix = "write [\"*\"] alone, or list the origins explicitly".to_string();
                ctx.error(&e.span, &e.key, message, Some(fix));
            } else if e.item.as_array().is_some_and(|a| a.is_empty()) {
                let fix = "list the allowed origins, or remove [site.cors]".to_string();
                ctx.error(&e.span, &e.key, "is empty".into(), Some(fix));
            }
            for (key, text, span) in list {
                if let Some(origin) = origin(ctx, &key, &text, &span) {
                    cors.origins.push(origin);
                }
            }
        }
        None => {
            let key = fields.key("origins");
            let fix = "add origins = [\"https://app.example.com\"]".to_string();
            ctx.error(&fields.span, &key, "is missing".into(), Some(fix));
        }
    }
    if let Some(e) = fields.get("methods") {
        cors.methods.clear();
        for (key, text, span) in ctx.strings(&e).unwrap_or_default() {
            let method = text.to_ascii_uppercase();
            if http::Method::from_bytes(method.as_bytes()).is_ok() && !method.is_empty() {
                cors.methods.push(method);
            } else {
                let fix = "write a method name, e.g. \"GET\"".to_string();
                ctx.error(&span, &key, format!("{text:?} is not a method"), Some(fix));
            }
        }
    }
    if let Some(e) = fields.get("headers") {
        cors.headers = Some(header_names(ctx, &e));
    }
    if let Some(e) = fields.get("expose_headers") {
        cors.expose_headers = header_names(ctx, &e);
    }
    let credentials = fields.get("credentials");
    if let Some(e) = &credentials {
        cors.credentials = ctx.boolean(e).unwrap_or(false);
    }
    if let Some(e) = fields.get("max_age") {
        cors.max_age = ctx.duration(&e);
    }
    if cors.credentials && cors.origins.iter().any(|o| o == "*") {
        if let Some(e) = credentials {
            let message = "credentials = true cannot be used with origins = [\"*\"]".to_string();
            let fix = "list the origins explicitly".to_string();
            ctx.error(&e.span, &e.key, message, Some(fix));
        }
    }
    fields.finish(ctx);
    Some(cors)
}

fn header_names(ctx: &mut Ctx, entry: &Entry) -> Vec<String> {
    let mut names = Vec::new();
    for (key, text, span) in ctx.strings(entry).unwrap_or_default() {
        let name = text.to_ascii_lowercase();
        if http::HeaderName::from_bytes(name.as_bytes()).is_ok() {
            names.push(name);
        } else {
            let fix = "write a header name, e.g. \"content-type\"".to_string();
            ctx.error(
                &span,
                &key,
                format!("{text:?} is not a header name"),
                Some(fix),
            );
        }
    }
    names
}

fn origin(ctx: &mut Ctx, key: &str, text: &str, span: &Span) -> Option<String> {
    if text == "*" {
        return Some(text.to_string());
    }
    let problem = match text.split_once("://") {
        None => Some("it has no scheme".to_string()),
        Some((scheme, _))
            if scheme.is_empty()
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            Some("the scheme is not valid".to_string())
        }
        Some((_, rest)) if rest.contains('/') || rest.contains('?') || rest.contains('#') => {
            Some("an origin has no path".to_string())
        }
        Some((_, rest)) => authority_problem(rest),
    };
    match problem {
        Some(problem) => {
            let message = format!("{text:?} is not an origin: {problem}");
            ctx.error(span, key, message, Some(ORIGIN_FIX.into()));
            None
        }
        None => Some(text.to_ascii_lowercase()),
    }
}

fn authority_problem(authority: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Some("unclosed `[` around the IPv6 address".to_string());
        };
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Some("unexpected text after `]`".to_string()),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Some("it has no host".to_string());
    }
    if host.chars().any(|c| c.is_whitespace() || c == '@') {
        return Some("the host is not valid".to_string());
    }
    match port.map(str::parse::<u16>) {
        Some(Err(_)) => Some("invalid port".to_string()),
        _ => None,
    }
}
