//! `[app.NAME]` and `upstream.app`: values, defaults and errors.

use std::time::Duration;

use super::*;

#[test]
fn full_app_section_parses_with_every_key() {
    let config = parse_ok(
        r#"[app.web]
command = ["./server", "--mode", "release"]
instances = 3
port = 9001
env = { GIN_MODE = "release" }
restart = "on-failure"
backoff = "2s"
max_backoff = "30s"
stop_signal = "SIGINT"
stop_timeout = "5s"
memory_limit = "512MiB"
cpu_limit = 0.5
open_files = 65536
log = "off"
start_timeout = "20s"

[upstream.web]
app = "web"
balance = "least_conn"
"#,
    );
    let app = &config.apps["web"];
    assert_eq!(app.command, ["./server", "--mode", "release"]);
    assert_eq!((app.instances, app.port), (3, 9001));
    assert_eq!(app.env["GIN_MODE"], "release");
    assert_eq!(app.restart, Restart::OnFailure);
    assert_eq!(
        (app.backoff, app.max_backoff),
        (Duration::from_secs(2), Duration::from_secs(30))
    );
    assert_eq!(app.stop_signal, "INT");
    assert_eq!(app.stop_timeout, Duration::from_secs(5));
    assert_eq!(app.memory_limit, Some(512 * 1024 * 1024));
    assert_eq!(app.cpu_limit, Some(0.5));
    assert_eq!(app.open_files, Some(65536));
    assert_eq!(app.log, AppLog::Off);
    assert_eq!(app.start_timeout, Duration::from_secs(20));
    let upstream = &config.upstreams["web"];
    assert_eq!(upstream.app.as_deref(), Some("web"));
    assert!(upstream.servers.is_empty());
}

#[test]
fn app_defaults() {
    let config = parse_ok("[app.web]\ncommand = [\"./server\"]\nport = \"${APP_PORT:-9100}\"\n");
    let app = &config.apps["web"];
    assert_eq!((app.instances, app.port), (1, 9100));
    assert_eq!(app.restart, Restart::Always);
    assert_eq!(app.backoff, defaults::APP_BACKOFF);
    assert_eq!(app.stop_signal, "TERM");
    assert_eq!(app.log, AppLog::Stdout);
    assert_eq!(app.memory_limit, None);
}

#[test]
fn app_errors_are_all_reported_with_positions() {
    let found = errors(
        r#"[app."bad name"]
command = []
port = 70000
instances = 0
restart = "sometimes"
stop_signal = "STOP"

[upstream.web]
app = "missing"
"#,
    );
    let keys: Vec<&str> = found.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(
        keys,
        [
            "app.bad name",
            "app.bad name.command",
            "app.bad name.port",
            "app.bad name.instances",
            "app.bad name.restart",
            "app.bad name.stop_signal",
            "upstream.web.app",
        ]
    );
    let (line, column, _, message) = found
        .iter()
        .find(|e| e.2 == "upstream.web.app")
        .cloned()
        .expect("upstream.web.app error");
    assert_eq!((line, column), (9, 7));
    assert_eq!(message, "no app named \"missing\"");
}

#[test]
fn an_upstream_cannot_have_both_app_and_servers() {
    let (line, _, key, message) = one_error(
        "[app.web]\ncommand = [\"./s\"]\nport = 9001\n\n[upstream.web]\napp = \"web\"\nservers = [\"127.0.0.1:1\"]\n",
    );
    assert_eq!(line, 7);
    assert_eq!(key, "upstream.web.servers");
    assert_eq!(message, "cannot be combined with app");
}

#[test]
fn a_port_near_the_largest_integer_is_out_of_range_not_a_crash() {
    for port in [
        "9223372036854775807",
        "9223372036854775806",
        "\"${P:-9223372036854775807}\"",
    ] {
        let (line, column, key, message) = one_error(&format!(
            "[app.web]\ncommand = [\"./server\"]\ninstances = 3\nport = {port}\n"
        ));
        assert_eq!(
            (line, column, key.as_str()),
            (4, 8, "app.web.port"),
            "{port}"
        );
        assert!(
            message.contains("do not fit in 1..=65535"),
            "{port}: {message}"
        );
    }
}
