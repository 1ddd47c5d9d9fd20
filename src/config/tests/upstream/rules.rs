//! Upstream pool rules: each broken key reported at the right line:column
//! with its key, its message and a fix.

use super::super::errors;
use super::{only, pool};

/// Errors as (line, column, key).
fn positions(text: &str) -> Vec<(usize, usize, String)> {
    errors(text).into_iter().map(|e| (e.0, e.1, e.2)).collect()
}

#[test]
fn unknown_balance_lists_the_choices() {
    let e = only("[upstream.app]\nbalance = \"least_con\"\nservers = [\"127.0.0.1:1\"]\n");
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (2, 11, "upstream.app.balance")
    );
    assert_eq!(e.message, "unknown balance \"least_con\"");
    let fix = e.fix.unwrap_or_default();
    assert!(fix.starts_with("did you mean \"least_conn\"?"), "{fix}");
    assert!(
        fix.contains("round_robin, least_conn, ip_hash, p2c, random"),
        "{fix}"
    );
}

#[test]
fn server_rules() {
    let text = r#"[upstream.app]
servers = [
  { addr = "127.0.0.1:1", weight = 0 },
  { addr = "127.0.0.1:2", weight = 1001 },
  { addr = "127.0.0.1:3", weight = "x" },
  { addr = "127.0.0.1:4", backup = "yes" },
  { addr = "127.0.0.1:5", wieght = 2 },
  "127.0.0.1:6",
  "127.0.0.1:6",
]
"#;
    let all = errors(text);
    let found: Vec<(usize, usize, &str)> = all.iter().map(|e| (e.0, e.1, e.2.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (3, 36, "upstream.app.servers[0].weight"),
            (4, 36, "upstream.app.servers[1].weight"),
            (5, 36, "upstream.app.servers[2].weight"),
            (6, 36, "upstream.app.servers[3].backup"),
            (7, 27, "upstream.app.servers[4].wieght"),
            (9, 3, "upstream.app.servers[6]"),
        ]
    );
    assert_eq!(all[0].3, "0 is out of range 1..=1000");
    assert_eq!(all[2].3, "\"x\" is not a whole number");
    assert_eq!(all[3].3, "expected true or false, found string");
    assert_eq!(
        all[5].3,
        "127.0.0.1:6 is listed twice (also at upstream.app.servers[5])"
    );

    let e = only("[upstream.app]\nservers = [{ addr = \"127.0.0.1:1\", weight = 5000 }]\n");
    assert_eq!(e.fix.as_deref(), Some("use a weight between 1 and 1000"));
    let e = only("[upstream.app]\nservers = [{ addr = \"127.0.0.1:1\", port = 1 }]\n");
    assert_eq!(e.message, "unknown key `port`");
    assert_eq!(
        e.fix.as_deref(),
        Some("valid keys here: addr, weight, backup")
    );
}

#[test]
fn same_address_written_two_ways_is_a_duplicate() {
    let e = only("[upstream.app]\nservers = [\"127.0.0.1:9001\", \"localhost:9001\"]\n");
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (2, 30, "upstream.app.servers[1]")
    );
    assert!(e.message.contains("listed twice"), "{}", e.message);
}

#[test]
fn a_pool_of_only_backups_is_refused() {
    let text = "[upstream.app]\nservers = [{ addr = \"127.0.0.1:1\", backup = true }]\n";
    let e = only(text);
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (2, 11, "upstream.app.servers")
    );
    assert_eq!(e.message, "at least one server must not be a backup");
    // The array-of-tables form is read the same way.
    let text = "[upstream.app]\n[[upstream.app.servers]]\naddr = \"127.0.0.1:1\"\nweight = 2\nbackup = true\n";
    let e = only(text);
    assert_eq!(e.key, "upstream.app.servers");
    assert_eq!(e.line, 2);
}

#[test]
fn retry_rules() {
    let text = pool(
        "retries = 11\nretry_backoff = \"1s\"\nretry_backoff_max = \"500ms\"\nretry_budget = 1.5\n",
    );
    let found = positions(&text);
    assert_eq!(
        found,
        vec![
            (3, 11, "upstream.app.retries".to_string()),
            (5, 21, "upstream.app.retry_backoff_max".to_string()),
            (6, 16, "upstream.app.retry_budget".to_string()),
        ]
    );
    let e = only(&pool("retries = -1\n"));
    assert_eq!(e.message, "-1 is out of range 0..=10");
    let e = only(&pool("retry_budget = 2\n"));
    assert_eq!(e.message, "2 is out of range 0.0..=1.0");
    let e = only(&pool("retry_budget = \"20%\"\n"));
    assert_eq!(e.message, "expected a number, found string");

    // Only the backoff is written: the default cap (2s) is too short for it.
    let e = only(&pool("retry_backoff = \"5s\"\n"));
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (3, 17, "upstream.app.retry_backoff")
    );
    assert_eq!(
        e.message,
        "retry_backoff_max (2s) is shorter than retry_backoff (5s)"
    );
    assert!(e.fix.unwrap_or_default().contains("\"5s\""));
}

#[test]
fn health_rules() {
    let text = pool(
        "[upstream.app.health]\npath = \"health\"\ninterval = \"0s\"\nfails = 0\npasses = 0\nexpect = \"6xx\"\nport = 80\n",
    );
    let found = positions(&text);
    assert_eq!(
        found,
        vec![
            (4, 8, "upstream.app.health.path".to_string()),
            (5, 12, "upstream.app.health.interval".to_string()),
            (6, 9, "upstream.app.health.fails".to_string()),
            (7, 10, "upstream.app.health.passes".to_string()),
            (8, 10, "upstream.app.health.expect".to_string()),
            (9, 1, "upstream.app.health.port".to_string()),
        ]
    );

    let e = only(&pool(
        "[upstream.app.health]\ninterval = \"1s\"\ntimeout = \"2s\"\n",
    ));
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (5, 11, "upstream.app.health.timeout")
    );
    assert_eq!(e.message, "timeout (2s) is longer than interval (1s)");
    // Only the interval is written: the default timeout (1s) is longer.
    let e = only(&pool("[upstream.app.health]\ninterval = \"500ms\"\n"));
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (4, 12, "upstream.app.health.interval")
    );
    let e = only(&pool("[upstream.app.health]\ntimeout = \"0s\"\n"));
    assert_eq!(e.message, "must be longer than zero");
    let e = only(&pool("[upstream.app.health]\nexpect = \"2xxx\"\n"));
    assert_eq!(e.message, "\"2xxx\" is not a status or status range");
    assert!(e.fix.unwrap_or_default().contains("\"200-399\""));
    let e = only(&pool("[upstream.app.health]\nexpct = \"2xx\"\n"));
    let fix = e.fix.unwrap_or_default();
    assert_eq!(
        fix,
        "did you mean `expect`? valid keys here: path, interval, timeout, fails, passes, expect"
    );
}

#[test]
fn passive_and_breaker_rules() {
    let text = pool(
        "[upstream.app.passive]\nmax_fails = -1\nwindow = \"0s\"\neject_for = \"soon\"\nmax_ejected_percent = 101\n[upstream.app.breaker]\nfailures = 0\nopen_for = \"0s\"\nhalf_open = 1\n",
    );
    let found = positions(&text);
    assert_eq!(
        found,
        vec![
            (4, 13, "upstream.app.passive.max_fails".to_string()),
            (5, 10, "upstream.app.passive.window".to_string()),
            (6, 13, "upstream.app.passive.eject_for".to_string()),
            (
                7,
                23,
                "upstream.app.passive.max_ejected_percent".to_string()
            ),
            (9, 12, "upstream.app.breaker.failures".to_string()),
            (10, 12, "upstream.app.breaker.open_for".to_string()),
            (11, 1, "upstream.app.breaker.half_open".to_string()),
        ]
    );
    let e = only(&pool("[upstream.app.passive]\nmax_ejected_percent = 101\n"));
    assert_eq!(e.message, "101 is out of range 0..=100");
    assert_eq!(e.fix.as_deref(), Some("use a percentage between 0 and 100"));
    let e = only(&pool("[upstream.app.breaker]\nfailures = 0\n"));
    assert_eq!(e.message, "0 is too small: the least is 1");
    let e = only(&pool("[upstream.app.breaker]\nfailure = 3\n"));
    assert_eq!(
        e.fix.as_deref(),
        Some("did you mean `failures`? valid keys here: failures, open_for")
    );
    let e = only(&pool("[upstream.app.passive]\nejected = 3\n"));
    assert_eq!(
        e.fix.as_deref(),
        Some("valid keys here: max_fails, window, eject_for, max_ejected_percent")
    );
}

#[test]
fn unknown_pool_key_lists_valid_keys() {
    let e = only(&pool("retry = 2\n"));
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (3, 1, "upstream.app.retry")
    );
    let fix = e.fix.unwrap_or_default();
    assert!(fix.contains("retries"), "{fix}");
    assert!(fix.contains("balance, servers, connect_timeout"), "{fix}");
}
