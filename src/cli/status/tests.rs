//! How `wharf status` draws its tables.

use super::*;
use crate::observe::status::{ServerStatus, Traffic, UpstreamStatus};

fn server(address: &str, state: &str) -> ServerStatus {
    ServerStatus {
        address: address.into(),
        state: state.into(),
        available: state == "up",
        health: state.into(),
        ejected: false,
        breaker: "closed".into(),
        draining: false,
        backup: false,
        weight: 1,
        in_flight: 2,
        requests_total: 1234,
        failures_total: 5,
        latency_ms: Some(1.25),
    }
}

#[test]
fn servers_are_listed_one_per_row_with_aligned_numbers() {
    let status = Status {
        version: "0.1.0".into(),
        pid: 42,
        uptime_seconds: 3600,
        config: "/etc/wharf.toml".into(),
        time: 0,
        traffic: Traffic {
            requests_total: 10,
            errors_total: 0,
            in_flight: 0,
            connections_open: 1,
            history: Vec::new(),
        },
        sites: Vec::new(),
        upstreams: vec![UpstreamStatus {
            name: "app".into(),
            balance: "round_robin".into(),
            servers: vec![
                server("127.0.0.1:9001", "up"),
                server("127.0.0.1:19002", "down"),
            ],
        }],
        apps: Vec::new(),
        certificates: Vec::new(),
    };
    let text = render(&status, false);
    assert!(text.starts_with("wharf 0.1.0 · pid 42 · up 60 min · /etc/wharf.toml\n"));
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("app ")).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows[0].contains(" up ") && rows[1].contains(" down "),
        "{text}"
    );
    // Right-aligned numbers end in the same column.
    let end = |row: &str, needle: &str| row.find(needle).map(|i| i + needle.len());
    assert_eq!(end(rows[0], "1234"), end(rows[1], "1234"), "{text}");
    assert!(text.contains("(no apps supervised)"));
    assert!(text.contains("(no certificates)"));
    let colored = render(&status, true);
    assert!(colored.contains("\x1b[31mdown\x1b[0m"));
}
