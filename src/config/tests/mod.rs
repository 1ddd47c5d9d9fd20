//! Loader tests: the full example, defaults, loading from disk, rendering.
//! Error positions and rules are in `errors.rs`; upstream pools in `upstream.rs`;
//! `[tls]` in `tls.rs`; `[app.NAME]` in `app.rs`.

use std::path::Path;
use std::time::Duration;

use super::*;

mod app;
mod errors;
mod tls;
mod upstream;

pub(super) const EXAMPLE: &str = r#"[server]
listen = ["0.0.0.0:${PORT:-8080}"]
admin = "127.0.0.1:9180"
trusted_proxies = ["10.0.0.0/8"]
shutdown_timeout = "30s"
header_timeout = "10s"
idle_timeout = "60s"
max_header_size = "64KiB"
max_body_size = "10MiB"

[log]
format = "json"
access = "stdout"
level = "info"

[[site]]
hosts = ["example.com", "*.example.com"]
  [[site.route]]
  path = "/static/"
  static = "./static"
  spa = false
  [[site.route]]
  path = "/old/"
  redirect = "https://example.com/new/"
  status = 308
  [[site.route]]
  path = "/"
  upstream = "app"
  [site.cors]
  origins = ["https://app.example.com"]
  methods = ["GET", "POST"]
  headers = ["content-type", "authorization"]
  credentials = true
  max_age = "1h"

[upstream.app]
servers = ["127.0.0.1:9001", "127.0.0.1:9002"]
connect_timeout = "2s"
response_timeout = "60s"
"#;

pub(super) fn no_env(_: &str) -> Option<String> {
    None
}

/// A temporary directory with a `static/` subdirectory, as the example needs.
pub(super) fn base() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("static")).expect("static dir");
    dir
}

pub(super) fn parse_ok(text: &str) -> Config {
    let dir = base();
    match parse(text, "wharf.toml", dir.path(), &no_env) {
        Ok(config) => config,
        Err(e) => panic!("expected success, got:\n{e}"),
    }
}

/// Parses and returns the errors as (line, column, key, message).
pub(super) fn errors(text: &str) -> Vec<(usize, usize, String, String)> {
    let dir = base();
    match parse(text, "wharf.toml", dir.path(), &no_env) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(e) => e
            .errors
            .into_iter()
            .map(|e| (e.line, e.column, e.key, e.message))
            .collect(),
    }
}

pub(super) fn one_error(text: &str) -> (usize, usize, String, String) {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

#[test]
fn example_parses_into_expected_values() {
    let dir = base();
    let env = |name: &str| (name == "PORT").then(|| "9000".to_string());
    let config = match parse(EXAMPLE, "wharf.toml", dir.path(), &env) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(config.source, "wharf.toml");
    assert_eq!(
        config.server.listen,
        vec!["0.0.0.0:9000".parse().expect("addr")]
    );
    assert_eq!(
        config.server.admin,
        Some("127.0.0.1:9180".parse().expect("addr"))
    );
    assert_eq!(
        config.server.trusted_proxies,
        vec!["10.0.0.0/8".parse().expect("net")]
    );
    assert_eq!(config.server.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(config.server.max_header_size, 64 * 1024);
    assert_eq!(config.server.max_body_size, 10 * 1024 * 1024);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.access, AccessLog::Stdout);
    assert_eq!(config.log.level, "info");

    assert_eq!(config.sites.len(), 1);
    let site = &config.sites[0];
    assert_eq!(
        site.hosts,
        vec![
            HostPattern::Exact("example.com".into()),
            HostPattern::Wildcard(".example.com".into())
        ]
    );
    assert_eq!(site.routes.len(), 3);
    assert_eq!(site.routes[0].path, "/static/");
    match &site.routes[0].action {
        Action::Static { root, spa } => {
            assert_eq!(root, &dir.path().join("static"));
            assert!(!spa);
        }
        other => panic!("{other:?}"),
    }
    match &site.routes[1].action {
        Action::Redirect { to, status } => {
            assert_eq!(to, "https://example.com/new/");
            assert_eq!(*status, 308);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(&site.routes[2].action, Action::Proxy { upstream, .. } if upstream == "app"));
    let cors = site.cors.as_ref().expect("cors");
    assert_eq!(cors.origins, vec!["https://app.example.com"]);
    assert_eq!(cors.methods, vec!["GET", "POST"]);
    assert_eq!(
        cors.headers,
        Some(vec![
            "content-type".to_string(),
            "authorization".to_string()
        ])
    );
    assert!(cors.expose_headers.is_empty());
    assert!(cors.credentials);
    assert_eq!(cors.max_age, Some(Duration::from_secs(3600)));

    let app = &config.upstreams["app"];
    let addrs: Vec<String> = app.servers.iter().map(|s| s.addr.to_string()).collect();
    assert_eq!(addrs, vec!["127.0.0.1:9001", "127.0.0.1:9002"]);
    assert_eq!(app.connect_timeout, Duration::from_secs(2));
    assert_eq!(app.response_timeout, Duration::from_secs(60));
    assert!(config.secrets.is_empty());
}

#[test]
fn empty_file_gives_defaults() {
    let config = parse_ok("");
    assert_eq!(
        config.server.listen,
        vec!["0.0.0.0:8080".parse().expect("addr")]
    );
    assert_eq!(
        config.server.admin,
        Some("127.0.0.1:9180".parse().expect("addr"))
    );
    assert_eq!(config.server.idle_timeout, defaults::IDLE_TIMEOUT);
    assert_eq!(config.server.max_body_size, defaults::MAX_BODY_SIZE);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.level, "info");
    assert!(config.sites.is_empty());
    assert!(config.upstreams.is_empty());
}

#[test]
fn default_listen_reads_port() {
    let env = |name: &str| (name == "PORT").then(|| "7000".to_string());
    let config = parse("", "wharf.toml", Path::new("/"), &env).expect("parses");
    assert_eq!(
        config.server.listen,
        vec!["0.0.0.0:7000".parse().expect("addr")]
    );
}

#[test]
fn a_bad_port_variable_is_blamed_on_port_not_on_the_file() {
    let env = |name: &str| (name == "PORT").then(|| "abc".to_string());
    let err = parse("", "wharf.toml", Path::new("/"), &env).expect_err("bad PORT");
    assert_eq!(err.errors.len(), 1);
    let e = &err.errors[0];
    assert_eq!(e.key, "server.listen");
    assert!(e.message.contains("PORT is \"abc\""), "{err}");
    assert!(
        e.fix.as_deref().unwrap_or_default().contains("set PORT"),
        "{err}"
    );
    // With a [server] table, the error points at it.
    let err = parse(
        "[server]\nadmin = \"off\"\n",
        "wharf.toml",
        Path::new("/"),
        &env,
    )
    .expect_err("bad PORT");
    assert_eq!((err.errors[0].line, err.errors[0].column), (1, 1), "{err}");
}

#[test]
fn log_section() {
    let dir = base();
    let text = "[log]\nformat = \"pretty\"\naccess = \"logs/access.log\"\nlevel = \"WARN\"\n";
    let config = parse(text, "wharf.toml", dir.path(), &no_env).expect("parses");
    assert_eq!(config.log.format, LogFormat::Pretty);
    assert_eq!(
        config.log.access,
        AccessLog::File(dir.path().join("logs/access.log"))
    );
    assert_eq!(config.log.level, "warn");
}

#[test]
fn trusted_proxies_accept_bare_addresses() {
    let config =
        parse_ok("[server]\ntrusted_proxies = [\"192.168.1.10\", \"fd00::/8\", \"::1\"]\n");
    let nets: Vec<String> = config
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(nets, vec!["192.168.1.10/32", "fd00::/8", "::1/128"]);
}

#[test]
fn load_names_an_unreadable_file() {
    let err = load(Path::new("/nonexistent/wharf.toml")).expect_err("missing");
    assert_eq!(err.errors.len(), 1);
    assert!(
        err.to_string()
            .starts_with("/nonexistent/wharf.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn load_points_at_the_first_byte_that_is_not_utf8() {
    let dir = base();
    let path = dir.path().join("wharf.toml");
    std::fs::write(&path, b"[server]\nlisten = [\"h\xc3\xa9:80\xff\"]\n").expect("write");
    let err = load(&path).expect_err("not UTF-8");
    assert_eq!(err.errors.len(), 1);
    let e = &err.errors[0];
    // Columns count characters: `é` before the bad byte is one.
    assert_eq!((e.line, e.column), (2, 17), "{err}");
    assert!(e.message.contains("not valid UTF-8"), "{err}");
    assert!(e.message.contains("0xff"), "{err}");
    assert!(
        e.fix.as_deref().unwrap_or_default().contains("UTF-8"),
        "{err}"
    );
}

#[test]
fn load_resolves_static_against_the_file_directory() {
    let dir = base();
    let path = dir.path().join("wharf.toml");
    std::fs::write(
        &path,
        "[[site]]\n[[site.route]]\npath = \"/\"\nstatic = \"static\"\n",
    )
    .expect("write");
    let config = load(&path).expect("loads");
    let Action::Static { root, .. } = &config.sites[0].routes[0].action else {
        panic!("not static");
    };
    assert!(
        root.is_absolute() && root.ends_with("static"),
        "{}",
        root.display()
    );
}

#[test]
fn render_redacts_file_secrets_and_round_trips() {
    let dir = base();
    std::fs::write(dir.path().join("token"), "hunter2\n").expect("write");
    let text = format!(
        "{EXAMPLE}\n[[site]]\nhosts = [\"secret.test\"]\n[[site.route]]\npath = \"/\"\nrespond = \"token ${{file:token}}\"\n"
    );
    let config = parse(&text, "wharf.toml", dir.path(), &no_env).expect("parses");
    assert_eq!(config.secrets, vec!["hunter2"]);
    let rendered = config.render_redacted();
    assert!(!rendered.contains("hunter2"), "{rendered}");
    assert!(rendered.contains("respond = \"<redacted>\""), "{rendered}");
    assert!(
        rendered.contains("hosts = [\"example.com\", \"*.example.com\"]"),
        "{rendered}"
    );
    assert!(rendered.contains("upstream = \"app\""), "{rendered}");
    assert!(rendered.contains("max_age = \"1h\""), "{rendered}");
    assert!(rendered.contains("access = \"stdout\""), "{rendered}");

    let again = parse(&rendered, "rendered.toml", dir.path(), &no_env);
    let again = again.unwrap_or_else(|e| panic!("{e}\n{rendered}"));
    assert_eq!(again.sites.len(), 2);
    assert_eq!(again.server.listen, config.server.listen);
    assert_eq!(
        again.upstreams["app"].servers,
        config.upstreams["app"].servers
    );
}
