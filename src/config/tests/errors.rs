//! Error tests: each kind of problem is reported with the right
//! file:line:column and key, and several problems are reported at once.

use std::path::Path;
use std::time::Duration;

use super::{base, errors, no_env, one_error, parse_ok};
use crate::config::*;

#[test]
fn bad_listen_address_points_at_the_element() {
    let (line, column, key, message) =
        one_error("[server]\nlisten = [\"0.0.0.0:80\", \"0.0.0.0:80x\"]\n");
    assert_eq!((line, column), (2, 25));
    assert_eq!(key, "server.listen[1]");
    assert_eq!(message, "\"0.0.0.0:80x\" is not an address: invalid port");
}

#[test]
fn ipv6_listen_and_admin_off() {
    let config = parse_ok("[server]\nlisten = [\"[::1]:8080\"]\nadmin = \"off\"\n");
    assert_eq!(
        config.server.listen,
        vec!["[::1]:8080".parse().expect("addr")]
    );
    assert_eq!(config.server.admin, None);
    let (_, _, key, message) = one_error("[server]\nlisten = [\"::1:8080\"]\n");
    assert_eq!(key, "server.listen[0]");
    assert!(message.contains("brackets"), "{message}");
}

#[test]
fn localhost_listens_on_the_ipv4_loopback_and_other_names_are_refused() {
    let config = parse_ok(
        "[server]\nlisten = [\"localhost:8080\"]\nhttps = [\"LocalHost:8443\"]\nadmin = \"localhost:9180\"\n\n[tls]\nmode = \"internal\"\n",
    );
    assert_eq!(
        config.server.listen,
        vec!["127.0.0.1:8080".parse().expect("addr")]
    );
    assert_eq!(
        config.server.https,
        vec!["127.0.0.1:8443".parse().expect("addr")]
    );
    assert_eq!(
        config.server.admin,
        Some("127.0.0.1:9180".parse().expect("addr"))
    );
    let (_, _, key, message) = one_error("[server]\nlisten = [\"example.com:80\"]\n");
    assert_eq!(key, "server.listen[0]");
    assert!(message.contains("not an IP address"), "{message}");
}

#[test]
fn unknown_keys_are_named_with_suggestion() {
    let dir = base();
    let text = "[server]\nlisen = [\"0.0.0.0:80\"]\n";
    let err = parse(text, "wharf.toml", dir.path(), &no_env).expect_err("unknown key");
    let e = &err.errors[0];
    assert_eq!((e.line, e.column), (2, 1));
    assert_eq!(e.key, "server.lisen");
    assert_eq!(e.message, "unknown key `lisen`");
    let fix = e.fix.as_deref().unwrap_or_default();
    assert!(fix.starts_with("did you mean `listen`?"), "{fix}");
    assert!(fix.contains("trusted_proxies"), "{fix}");
}

#[test]
fn unknown_top_level_table() {
    let (line, column, key, message) = one_error("\n[certbot]\nacme = true\n");
    assert_eq!((line, column, key.as_str()), (2, 2, "certbot"));
    assert_eq!(message, "unknown section `[certbot]`");
}

#[test]
fn unknown_keys_in_nested_tables() {
    let text = "[[site]]\n[[site.route]]\npath = \"/\"\nrespond = \"hi\"\nstatuss = 200\n[site.cors]\norigins = [\"*\"]\nmax_agee = \"1h\"\n";
    let all = errors(text);
    let keys: Vec<&str> = all.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(
        keys,
        vec!["site[0].route[0].statuss", "site[0].cors.max_agee"]
    );
    assert_eq!((all[0].0, all[0].1), (5, 1));
    assert_eq!((all[1].0, all[1].1), (8, 1));
}

#[test]
fn several_errors_are_reported_at_once_in_file_order() {
    let text = r#"[server]
listen = ["0.0.0.0:80x"]
idle_timeout = "soon"
max_body_size = "10XB"

[log]
level = "loud"

[[site]]
  [[site.route]]
  path = "/"
  upstream = "ap"

[upstream.app]
servers = ["127.0.0.1:9001"]
"#;
    let dir = base();
    let err = parse(text, "wharf.toml", dir.path(), &no_env).expect_err("errors");
    let found: Vec<(usize, &str)> = err
        .errors
        .iter()
        .map(|e| (e.line, e.key.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (2, "server.listen[0]"),
            (3, "server.idle_timeout"),
            (4, "server.max_body_size"),
            (7, "log.level"),
            (12, "site[0].route[0].upstream"),
        ]
    );
    let upstream = &err.errors[4];
    assert_eq!(upstream.message, "no upstream named \"ap\"");
    assert_eq!(
        upstream.fix.as_deref(),
        Some("did you mean `app`? defined: app")
    );
    let text = err.to_string();
    assert!(text.starts_with("wharf.toml:2:11: server.listen[0]: \"0.0.0.0:80x\" is not an address: invalid port\n    fix: write host:port"), "{text}");
    assert!(text.ends_with("\n5 errors in wharf.toml"), "{text}");
}

#[test]
fn unset_variable_points_inside_the_string() {
    let dir = base();
    let text = "[server]\nadmin = \"127.0.0.1:${ADMIN_PORT}\"\n";
    let err = parse(text, "wharf.toml", dir.path(), &no_env).expect_err("unset");
    let e = &err.errors[0];
    assert_eq!((e.line, e.column), (2, 20));
    assert_eq!(e.key, "server.admin");
    assert_eq!(e.message, "environment variable ADMIN_PORT is not set");
    assert_eq!(
        e.fix.as_deref(),
        Some("set ADMIN_PORT or write ${ADMIN_PORT:-default}")
    );
}

#[test]
fn interpolation_happens_before_type_parsing() {
    let env = |name: &str| match name {
        "BODY" => Some("1MiB".to_string()),
        "IDLE" => Some("5s".to_string()),
        _ => None,
    };
    let text = "[server]\nmax_body_size = \"${BODY}\"\nidle_timeout = \"${IDLE}\"\nshutdown_timeout = \"${GRACE:-1s}\"\n[[site]]\n[[site.route]]\npath = \"/\"\nrespond = \"costs $$5\"\n";
    let config = parse(text, "wharf.toml", Path::new("/"), &env).expect("parses");
    assert_eq!(config.server.max_body_size, 1 << 20);
    assert_eq!(config.server.idle_timeout, Duration::from_secs(5));
    assert_eq!(config.server.shutdown_timeout, Duration::from_secs(1));
    assert!(
        matches!(&config.sites[0].routes[0].action, Action::Respond { body, .. } if body == "costs $5")
    );
}

#[test]
fn route_needs_exactly_one_action() {
    let (line, column, key, message) = one_error("[[site]]\n[[site.route]]\npath = \"/\"\n");
    assert_eq!((line, column, key.as_str()), (2, 1, "site[0].route[0]"));
    assert_eq!(message, "has no action");

    let text = "[[site]]\n[[site.route]]\npath = \"/\"\nrespond = \"a\"\nredirect = \"/b\"\n";
    let (line, column, key, message) = one_error(text);
    assert_eq!(
        (line, column, key.as_str()),
        (5, 1, "site[0].route[0].redirect")
    );
    assert_eq!(message, "`respond` and `redirect` cannot both be set");
}

#[test]
fn keys_that_do_not_apply_to_the_action() {
    let text = "[upstream.app]\nservers = [\"127.0.0.1:1\"]\n[[site]]\n[[site.route]]\npath = \"/\"\nupstream = \"app\"\nspa = true\n";
    let (line, column, key, message) = one_error(text);
    assert_eq!((line, column, key.as_str()), (7, 1, "site[0].route[0].spa"));
    assert_eq!(message, "`spa` does not apply to an `upstream` route");

    let text = "[[site]]\n[[site.route]]\npath = \"/s/\"\nstatic = \".\"\nstrip_prefix = true\n";
    let (line, column, key, message) = one_error(text);
    assert_eq!(
        (line, column, key.as_str()),
        (5, 1, "site[0].route[0].strip_prefix")
    );
    assert_eq!(message, "`strip_prefix` does not apply to a `static` route");
}

#[test]
fn strip_prefix_needs_a_prefix_to_strip() {
    let route = |path: &str| {
        format!("[upstream.app]\nservers = [\"127.0.0.1:1\"]\n[[site]]\n[[site.route]]\npath = \"{path}\"\nupstream = \"app\"\nstrip_prefix = true\n")
    };
    let (line, column, key, message) = one_error(&route("/"));
    assert_eq!(
        (line, column, key.as_str()),
        (7, 16, "site[0].route[0].strip_prefix")
    );
    assert_eq!(message, "takes nothing off the path of a route on \"/\"");
    let config = crate::config::parse(&route("/api/"), "t.toml", Path::new("."), &|_| None)
        .expect("a route with a path strips it");
    assert!(matches!(
        &config.sites[0].routes[0].action,
        crate::config::Action::Proxy {
            strip_prefix: true,
            ..
        }
    ));
}

#[test]
fn route_rules() {
    let text = r#"[[site]]
[[site.route]]
path = "api"
respond = "x"
[[site.route]]
path = "/a"
redirect = "/b"
status = 200
[[site.route]]
path = "/a"
static = "missing"
[[site.route]]
path = "/c"
upstream = "none"
"#;
    let all = errors(text);
    let found: Vec<(usize, usize, &str)> = all.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (3, 8, "site[0].route[0].path"),
            (8, 10, "site[0].route[1].status"),
            (10, 8, "site[0].route[2].path"),
            (11, 10, "site[0].route[2].static"),
            (14, 12, "site[0].route[3].upstream"),
        ]
    );
    assert!(
        all[2].3.contains("already routed by site[0].route[1]"),
        "{}",
        all[2].3
    );
    assert!(all[3].3.starts_with("cannot open"), "{}", all[3].3);
}

#[test]
fn static_must_be_a_directory() {
    let dir = base();
    std::fs::write(dir.path().join("file.txt"), "x").expect("write");
    let text = "[[site]]\n[[site.route]]\npath = \"/\"\nstatic = \"file.txt\"\n";
    let err = parse(text, "wharf.toml", dir.path(), &no_env).expect_err("not a dir");
    assert!(err.errors[0].message.ends_with("is not a directory"));
}

#[test]
fn hosts_rules() {
    let config = parse_ok("[[site]]\nhosts = [\"Example.COM\", \"*.Foo.org\"]\n[[site]]\n");
    assert_eq!(
        config.sites[0].hosts,
        vec![
            HostPattern::Exact("example.com".into()),
            HostPattern::Wildcard(".foo.org".into())
        ]
    );
    assert_eq!(config.sites[1].hosts, vec![HostPattern::Any]);

    let text = "[[site]]\nhosts = [\"a b\", \"x.com:80\", \"\", \"a.*.com\"]\n";
    let found: Vec<(usize, usize)> = errors(text).iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(found, vec![(2, 10), (2, 17), (2, 29), (2, 33)]);

    let text = "[[site]]\nhosts = [\"example.com\"]\n[[site]]\nhosts = [\"EXAMPLE.com\"]\n";
    let (line, column, key, message) = one_error(text);
    assert_eq!((line, column, key.as_str()), (4, 10, "site[1].hosts[0]"));
    assert_eq!(message, "\"EXAMPLE.com\" is already claimed by site[0]");

    let (line, _, key, _) = one_error("[[site]]\n[[site]]\n");
    assert_eq!((line, key.as_str()), (2, "site[1].hosts"));
}

#[test]
fn cors_rules() {
    let text = "[[site]]\n[site.cors]\norigins = [\"*\"]\ncredentials = true\n";
    let dir = base();
    let err = parse(text, "wharf.toml", dir.path(), &no_env).expect_err("wildcard");
    let e = &err.errors[0];
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (4, 15, "site[0].cors.credentials")
    );
    assert_eq!(e.fix.as_deref(), Some("list the origins explicitly"));

    let text = "[[site]]\n[site.cors]\norigins = [\"https://a.com/\", \"a.com\", \"http://b.com:99999\"]\nmethods = [\"get\", \"BAD METHOD\"]\nheaders = [\"X-Ok\", \"bad header\"]\n";
    let all = errors(text);
    let found: Vec<(usize, usize)> = all.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(found, vec![(3, 12), (3, 30), (3, 39), (4, 19), (5, 20)]);
    assert!(all[0].3.contains("an origin has no path"), "{}", all[0].3);

    let config = parse_ok("[[site]]\n[site.cors]\norigins = [\"HTTPS://App.Example.com:8443\", \"http://[::1]:3000\"]\nmethods = [\"get\"]\nheaders = [\"X-Ok\"]\n");
    let cors = config.sites[0].cors.as_ref().expect("cors");
    assert_eq!(
        cors.origins,
        vec!["https://app.example.com:8443", "http://[::1]:3000"]
    );
    assert_eq!(cors.methods, vec!["GET"]);
    assert_eq!(cors.headers, Some(vec!["x-ok".to_string()]));
    assert!(!cors.credentials);

    let config = parse_ok("[[site]]\n[site.cors]\norigins = [\"*\"]\n");
    let cors = config.sites[0].cors.as_ref().expect("cors");
    assert_eq!(cors.methods, defaults::CORS_METHODS);
}

#[test]
fn upstream_rules() {
    let text = "[upstream.app]\nservers = []\n[upstream.\"bad name\"]\nservers = [\"localhost:9001\", { addr = \"127.0.0.1:9002\", weight = 0 }]\n[upstream.x]\nconnect_timeout = \"1s\"\n";
    let all = errors(text);
    let found: Vec<(usize, usize, &str)> = all.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (2, 11, "upstream.app.servers"),
            (3, 11, "upstream.bad name"),
            (4, 66, "upstream.bad name.servers[1].weight"),
            (5, 1, "upstream.x.servers"),
        ]
    );

    let config =
        parse_ok("[upstream.app]\nservers = [\"localhost:9001\", { addr = \"[::1]:9002\" }]\n");
    let addrs: Vec<String> = config.upstreams["app"]
        .servers
        .iter()
        .map(|s| s.addr.to_string())
        .collect();
    assert_eq!(addrs, vec!["127.0.0.1:9001", "[::1]:9002"]);
    assert_eq!(
        config.upstreams["app"].connect_timeout,
        defaults::CONNECT_TIMEOUT
    );
}

#[test]
fn wrong_types_and_syntax_errors() {
    let all = errors("[server]\nlisten = \"0.0.0.0:80\"\nmax_body_size = -1\n[log]\nformat = 3\n");
    let found: Vec<(usize, usize, &str)> = all.iter().map(|e| (e.0, e.1, e.3.as_str())).collect();
    assert_eq!(found[0], (2, 10, "expected an array, found string"));
    assert_eq!((found[1].0, found[1].1), (3, 17));
    assert_eq!(found[2], (5, 10, "expected a string, found integer"));

    let (line, column, key, message) = one_error("[server]\nlisten = [\n");
    assert_eq!((line, key.as_str()), (3, ""));
    assert!(column >= 1);
    assert!(message.starts_with("not valid TOML"), "{message}");
}

#[test]
fn valid_server_keys_are_listed_once() {
    let dir = base();
    let err =
        parse("[server]\nbogus = 1\n", "wharf.toml", dir.path(), &no_env).expect_err("unknown key");
    let fix = err.errors[0].fix.clone().unwrap_or_default();
    assert_eq!(fix.matches("admin_token").count(), 1, "{fix}");
}
