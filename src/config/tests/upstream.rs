//! Upstream pool tests: every key read into the expected value, defaults
//! when sections are absent, and the forms of `expect`. Each rule
//! reported at the right line:column with its key and fix is in
//! `upstream/rules.rs`.

use std::time::Duration;

use super::{base, no_env, parse_ok};
use crate::config::upstream_health::parse_expect;
use crate::config::*;

mod rules;

const FULL: &str = r#"[upstream.app]
balance = "least_conn"
servers = [
  { addr = "127.0.0.1:9001", weight = 3 },
  "127.0.0.1:9002",
  { addr = "127.0.0.1:9003", backup = true },
]
connect_timeout = "500ms"
response_timeout = "30s"
retries = 2
retry_backoff = "50ms"
retry_backoff_max = "1s"
retry_budget = 0.5

[upstream.app.health]
path = "/ready"
interval = "5s"
timeout = "2s"
fails = 4
passes = 3
expect = "200-399"

[upstream.app.passive]
max_fails = 7
window = "20s"
eject_for = "1m"
max_ejected_percent = 30

[upstream.app.breaker]
failures = 9
open_for = "15s"
"#;

/// The only error of `text`, with its fix.
fn only(text: &str) -> ConfigError {
    let dir = base();
    let mut err = parse(text, "wharf.toml", dir.path(), &no_env).expect_err("an error");
    assert_eq!(err.errors.len(), 1, "expected one error, got {err}");
    err.errors.remove(0)
}

fn pool(body: &str) -> String {
    format!("[upstream.app]\nservers = [\"127.0.0.1:9001\"]\n{body}")
}

fn server(addr: &str, weight: u32, backup: bool) -> UpstreamServer {
    UpstreamServer {
        addr: addr.parse().expect("addr"),
        weight,
        backup,
    }
}

#[test]
fn every_key_parses_into_expected_values() {
    let config = parse_ok(FULL);
    let app = &config.upstreams["app"];
    assert_eq!(app.balance, Balance::LeastConn);
    assert_eq!(
        app.servers,
        vec![
            server("127.0.0.1:9001", 3, false),
            server("127.0.0.1:9002", 1, false),
            server("127.0.0.1:9003", 1, true),
        ]
    );
    assert_eq!(app.connect_timeout, Duration::from_millis(500));
    assert_eq!(app.response_timeout, Duration::from_secs(30));
    assert_eq!(app.retries, 2);
    assert_eq!(app.retry_backoff, Duration::from_millis(50));
    assert_eq!(app.retry_backoff_max, Duration::from_secs(1));
    assert_eq!(app.retry_budget, 0.5);
    assert_eq!(
        app.health,
        Some(HealthCheck {
            path: "/ready".into(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            fails: 4,
            passes: 3,
            expect: StatusRange {
                low: 200,
                high: 399
            },
        })
    );
    assert_eq!(
        app.passive,
        Some(Passive {
            max_fails: 7,
            window: Duration::from_secs(20),
            eject_for: Duration::from_secs(60),
            max_ejected_percent: 30,
        })
    );
    assert_eq!(
        app.breaker,
        Some(Breaker {
            failures: 9,
            open_for: Duration::from_secs(15),
        })
    );
}

#[test]
fn absent_sections_give_defaults() {
    let config = parse_ok("[upstream.app]\nservers = [\"127.0.0.1:9001\"]\n");
    let app = &config.upstreams["app"];
    assert_eq!(app.balance, Balance::RoundRobin);
    assert_eq!(app.servers, vec![server("127.0.0.1:9001", 1, false)]);
    assert_eq!(app.retries, defaults::RETRIES);
    assert_eq!(app.retry_backoff, defaults::RETRY_BACKOFF);
    assert_eq!(app.retry_backoff_max, defaults::RETRY_BACKOFF_MAX);
    assert_eq!(app.retry_budget, defaults::RETRY_BUDGET);
    assert_eq!(app.health, None);
    assert_eq!(app.breaker, None);
    assert_eq!(
        app.passive,
        Some(Passive {
            max_fails: defaults::PASSIVE_MAX_FAILS,
            window: defaults::PASSIVE_WINDOW,
            eject_for: defaults::PASSIVE_EJECT_FOR,
            max_ejected_percent: defaults::PASSIVE_MAX_EJECTED_PERCENT,
        })
    );
}

#[test]
fn empty_sections_turn_features_on_with_defaults() {
    let config = parse_ok(&pool("[upstream.app.health]\n[upstream.app.breaker]\n"));
    let app = &config.upstreams["app"];
    assert_eq!(
        app.health,
        Some(HealthCheck {
            path: defaults::HEALTH_PATH.into(),
            interval: defaults::HEALTH_INTERVAL,
            timeout: defaults::HEALTH_TIMEOUT,
            fails: defaults::HEALTH_FAILS,
            passes: defaults::HEALTH_PASSES,
            expect: StatusRange {
                low: 200,
                high: 299
            },
        })
    );
    assert_eq!(
        app.breaker,
        Some(Breaker {
            failures: defaults::BREAKER_FAILURES,
            open_for: defaults::BREAKER_OPEN_FOR,
        })
    );
}

#[test]
fn max_fails_zero_turns_passive_off() {
    let config = parse_ok(&pool("[upstream.app.passive]\nmax_fails = 0\n"));
    assert_eq!(config.upstreams["app"].passive, None);
    // The other keys are still checked.
    let e = only(&pool(
        "[upstream.app.passive]\nmax_fails = 0\nwindw = \"1s\"\n",
    ));
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (5, 1, "upstream.app.passive.windw")
    );
}

#[test]
fn every_balance_and_ip_hash_with_backup() {
    for (name, balance) in [
        ("round_robin", Balance::RoundRobin),
        ("least_conn", Balance::LeastConn),
        ("ip_hash", Balance::IpHash),
        ("p2c", Balance::P2c),
        ("random", Balance::Random),
    ] {
        let text = format!(
            "[upstream.app]\nbalance = \"{name}\"\nservers = [\"127.0.0.1:1\", {{ addr = \"127.0.0.1:2\", backup = true }}]\n"
        );
        assert_eq!(parse_ok(&text).upstreams["app"].balance, balance);
    }
}

#[test]
fn retry_budget_accepts_whole_zero_and_one() {
    let budget =
        |v: &str| parse_ok(&pool(&format!("retry_budget = {v}\n"))).upstreams["app"].retry_budget;
    assert_eq!(budget("0"), 0.0);
    assert_eq!(budget("1"), 1.0);
    assert_eq!(budget("1.0"), 1.0);
}

#[test]
fn expect_forms() {
    let range = |low, high| Some(StatusRange { low, high });
    assert_eq!(parse_expect("2xx"), range(200, 299));
    assert_eq!(parse_expect("3XX"), range(300, 399));
    assert_eq!(parse_expect("1xx"), range(100, 199));
    assert_eq!(parse_expect("5xx"), range(500, 599));
    assert_eq!(parse_expect("204"), range(204, 204));
    assert_eq!(parse_expect("200-399"), range(200, 399));
    assert_eq!(parse_expect("200 - 204"), range(200, 204));
    assert_eq!(parse_expect("301-301"), range(301, 301));
    for bad in [
        "", "0xx", "6xx", "xx", "22xx", "99", "600", "abc", "399-200", "200-", "-200", "200-600",
        "+200",
    ] {
        assert_eq!(parse_expect(bad), None, "{bad:?}");
    }
    let config = parse_ok(&pool("[upstream.app.health]\nexpect = 204\n"));
    let health = config.upstreams["app"].health.clone().expect("health");
    assert_eq!(
        health.expect,
        StatusRange {
            low: 204,
            high: 204
        }
    );
    assert!(health.expect.contains(204) && !health.expect.contains(200));
}

#[test]
fn every_new_key_renders_and_round_trips() {
    let config = parse_ok(FULL);
    let rendered = config.render_redacted();
    for line in [
        "balance = \"least_conn\"",
        "weight = 3",
        "backup = true",
        "retries = 2",
        "retry_backoff = \"50ms\"",
        "retry_backoff_max = \"1s\"",
        "retry_budget = 0.5",
        "[upstream.app.health]",
        "expect = \"200-399\"",
        "[upstream.app.passive]",
        "eject_for = \"1m\"",
        "[upstream.app.breaker]",
        "open_for = \"15s\"",
    ] {
        assert!(rendered.contains(line), "{line} missing from:\n{rendered}");
    }
    let again = parse_ok(&rendered);
    assert_eq!(
        format!("{:?}", again.upstreams),
        format!("{:?}", config.upstreams)
    );

    // Passive off and health with the default expect survive the trip too.
    let config = parse_ok(&pool(
        "[upstream.app.passive]\nmax_fails = 0\n[upstream.app.health]\n",
    ));
    let rendered = config.render_redacted();
    assert!(rendered.contains("expect = \"2xx\""), "{rendered}");
    let again = parse_ok(&rendered);
    assert_eq!(again.upstreams["app"].passive, None, "{rendered}");
    assert_eq!(
        format!("{:?}", again.upstreams),
        format!("{:?}", config.upstreams)
    );
}
