//! Reader for `[tls]`: where HTTPS certificates come from.
//!
//! In: the section's table (or nothing: `mode = "off"`), and `[server]`
//! already read (its `https` listeners).
//! Out: a `Tls` with every default from `schema::defaults`; problems go to
//! the `Ctx`. This is what `wharf check` validates before anything runs:
//! files are readable and the key matches the certificate, the email looks
//! like one, the storage directory is writable, and the listeners fit the
//! mode. A reload with a bad pair is rejected here, so the old pair serves on.

use std::path::PathBuf;

use super::schema::{Challenge, Server, Tls, TlsMode};
use super::walk::{Ctx, Entry, Fields, Span};

const TLS_KEYS: &[&str] = &[
    "mode",
    "email",
    "directory",
    "directory_ca",
    "challenge",
    "renew_before",
    "storage",
    "cert",
    "key",
    "redirect_http",
    "hsts",
];

/// `https_span` is where `server.https` is written, for "HTTPS listeners
/// but no `[tls]`", which has no `[tls]` line to point at.
pub(crate) fn tls(ctx: &mut Ctx, entry: Option<Entry>, server: &Server, https_span: Span) -> Tls {
    let mut tls = Tls::default();
    let Some(fields) = entry.as_ref().and_then(|e| ctx.table(e, TLS_KEYS)) else {
        if !server.https.is_empty() {
            https_needs_certificates(ctx, &https_span);
        }
        return tls;
    };
    let mode = fields.get("mode");
    if let Some(e) = &mode {
        match ctx.string(e).as_deref() {
            Some("acme") => tls.mode = TlsMode::Acme,
            Some("internal") => tls.mode = TlsMode::Internal,
            Some("files") => tls.mode = TlsMode::Files,
            Some("off") => tls.mode = TlsMode::Off,
            Some(other) => ctx.error(
                &e.span,
                &e.key,
                format!("unknown mode {other:?}"),
                Some("write \"acme\", \"internal\", \"files\" or \"off\"".into()),
            ),
            None => {}
        }
    }
    let mode_span = mode
        .as_ref()
        .map(|e| e.span.clone())
        .unwrap_or(fields.span.clone());
    if let Some(e) = fields.get("email") {
        if let Some(email) = ctx.string(&e) {
            if is_email(&email) {
                tls.email = Some(email);
            } else {
                let message = format!("{email:?} is not an email address");
                let fix = "write an address like \"ops@example.com\" (no \"mailto:\")";
                ctx.error(&e.span, &e.key, message, Some(fix.into()));
            }
        }
    }
    if let Some(e) = fields.get("directory") {
        if let Some(url) = ctx.string(&e) {
            if url.starts_with("https://") && url.len() > "https://".len() {
                tls.directory = url;
            } else {
                let message = format!("{url:?} is not an https:// URL");
                let fix = "ACME directories are served over HTTPS, e.g. \"https://acme-v02.api.letsencrypt.org/directory\"";
                ctx.error(&e.span, &e.key, message, Some(fix.into()));
            }
        }
    }
    tls.directory_ca = readable_file(ctx, &fields, "directory_ca");
    if let Some(path) = &tls.directory_ca {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let (false, Some(e)) = (
            text.contains("-----BEGIN CERTIFICATE-----"),
            fields.get("directory_ca"),
        ) {
            let message = format!("{} holds no PEM certificate", path.display());
            let fix = "point it at the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)";
            ctx.error(&e.span, &e.key, message, Some(fix.into()));
        }
    }
    if let Some(e) = fields.get("challenge") {
        match ctx.string(&e).as_deref() {
            Some("http-01") => tls.challenge = Challenge::Http01,
            Some("tls-alpn-01") => tls.challenge = Challenge::TlsAlpn01,
            Some(other) => ctx.error(
                &e.span,
                &e.key,
                format!("unknown challenge {other:?}"),
                Some("write \"http-01\" or \"tls-alpn-01\"".into()),
            ),
            None => {}
        }
    }
    if let Some(e) = fields.get("renew_before") {
        match ctx.duration(&e) {
            Some(d) if d.is_zero() => ctx.error(
                &e.span,
                &e.key,
                "must be more than zero".into(),
                Some("write e.g. \"30d\", or leave it out for a third of the lifetime".into()),
            ),
            Some(d) => tls.renew_before = Some(d),
            None => {}
        }
    }
    if let Some(e) = fields.get("storage") {
        if let Some(text) = ctx.string(&e) {
            if text.is_empty() {
                let fix = "write a directory, e.g. \"/var/lib/wharf\"";
                ctx.error(&e.span, &e.key, "is empty".into(), Some(fix.into()));
            } else {
                tls.storage = clean(&ctx.base_dir.join(text));
            }
        }
    }
    tls.cert = readable_file(ctx, &fields, "cert");
    tls.key = readable_file(ctx, &fields, "key");
    if let Some(e) = fields.get("redirect_http") {
        if let Some(value) = ctx.boolean(&e) {
            tls.redirect_http = value;
        }
    }
    if let Some(e) = fields.get("hsts") {
        if let Some(value) = ctx.string(&e) {
            if valid_hsts(&value) {
                tls.hsts = Some(value);
            } else {
                let message = format!("{value:?} is not a Strict-Transport-Security value");
                let fix =
                    "write e.g. \"max-age=31536000\" or \"max-age=31536000; includeSubDomains\"";
                ctx.error(&e.span, &e.key, message, Some(fix.into()));
            }
        }
    }

    check_mode(ctx, &fields, &tls, server, &mode_span);
    fields.finish(ctx);
    tls
}

/// Cross-key rules: what each mode needs, and the listeners it serves.
fn check_mode(
    ctx: &mut Ctx,
    fields: &Fields,
    tls: &Tls,
    server: &Server,
    mode_span: &super::walk::Span,
) {
    let mode_key = fields.key("mode");
    if tls.mode == TlsMode::Off {
        if !server.https.is_empty() {
            https_needs_certificates(ctx, mode_span);
        }
        return;
    }
    if server.https.is_empty() {
        let fix = "add https = [\"0.0.0.0:443\"] to [server], or set mode = \"off\"";
        let message = "certificates are managed but server.https lists no HTTPS listener";
        ctx.error(mode_span, &mode_key, message.into(), Some(fix.into()));
    }
    if tls.mode == TlsMode::Files {
        for name in ["cert", "key"] {
            if fields.get(name).is_none() {
                let fix = format!(
                    "add {name} = \"/path/to/site.{}\"",
                    if name == "cert" { "pem" } else { "key" }
                );
                let message = format!("mode = \"files\" needs tls.{name}");
                ctx.error(mode_span, &fields.key(name), message, Some(fix));
            }
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            if let (Err(error), Some(e)) = (crate::tls::load_files(cert, key), fields.get("cert")) {
                let message = match error {
                    crate::tls::TlsError::Files(message) => message,
                    other => other.to_string(),
                };
                let fix =
                    "give the certificate chain (leaf first) and the private key that signed it";
                ctx.error(&e.span, &e.key, message, Some(fix.into()));
            }
        }
    } else {
        for name in ["cert", "key"] {
            if let Some(e) = fields.get(name) {
                let message = format!(
                    "is only used with mode = \"files\" (mode is {:?})",
                    mode_name(tls.mode)
                );
                let fix = "remove it, or set mode = \"files\"";
                ctx.error(&e.key_span, &e.key, message, Some(fix.into()));
            }
        }
        if ctx.machine == super::Machine::This {
            storage_writable(ctx, fields, tls, mode_span);
        }
    }
}

/// The storage directory can be made and written by this process (which
/// makes it): certificates are written there while serving, when an error
/// would come too late.
fn storage_writable(ctx: &mut Ctx, fields: &Fields, tls: &Tls, mode_span: &Span) {
    let storage = crate::tls::storage::Storage::new(&tls.storage);
    if let Err(error) = storage.check_writable() {
        let e = fields.get("storage");
        let span = e
            .as_ref()
            .map(|e| e.span.clone())
            .unwrap_or(mode_span.clone());
        let message = format!("{} is not writable: {error}", tls.storage.display());
        let fix = "create it and give wharf's user write access, or point tls.storage elsewhere";
        ctx.error(&span, &fields.key("storage"), message, Some(fix.into()));
    }
}

fn https_needs_certificates(ctx: &mut Ctx, span: &super::walk::Span) {
    let fix = "add [tls] with mode = \"acme\", \"internal\" or \"files\"";
    let message = "server.https needs certificates, but [tls] mode is \"off\"";
    ctx.error(span, "tls.mode", message.into(), Some(fix.into()));
}

fn mode_name(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Acme => "acme",
        TlsMode::Internal => "internal",
        TlsMode::Files => "files",
        TlsMode::Off => "off",
    }
}

/// A path key whose file must be readable; relative to the config's directory.
fn readable_file(ctx: &mut Ctx, fields: &Fields, name: &str) -> Option<PathBuf> {
    let e = fields.get(name)?;
    let text = ctx.string(&e)?;
    let path = clean(&ctx.base_dir.join(&text));
    match std::fs::File::open(&path) {
        Ok(_) => Some(path),
        Err(error) => {
            let message = format!("cannot read {}: {error}", path.display());
            let fix = "check the path (relative paths start at the config file's directory) and that wharf may read it";
            ctx.error(&e.span, &e.key, message, Some(fix.into()));
            None
        }
    }
}

/// `dir/./file` → `dir/file`, so messages and `--print` show clean paths.
fn clean(path: &std::path::Path) -> PathBuf {
    path.components().collect()
}

/// `local@domain.tld`, with nothing that would break a `mailto:` URI.
pub(super) fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    let clean = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_graphic()
                    && !matches!(c, '@' | ',' | '<' | '>' | '"' | '(' | ')' | ';' | ':')
            })
    };
    clean(local)
        && clean(domain)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

/// `max-age=<seconds>` plus optional directives, as a valid header value.
pub(super) fn valid_hsts(text: &str) -> bool {
    let has_max_age = text.split(';').any(|part| {
        part.trim()
            .to_ascii_lowercase()
            .strip_prefix("max-age=")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    has_max_age && http::HeaderValue::from_str(text).is_ok()
}
