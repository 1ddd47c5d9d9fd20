//! Unit tests of a pool's picking and recording: the breaker, passive
//! ejection and its limit, backups and retries avoiding tried servers.

use std::net::IpAddr;
use std::time::Duration;

use super::state::{Health, Registry};
use super::{Pick, Pool, Tried};
use crate::config::{Balance, Breaker, Passive, Upstream, UpstreamServer};

fn upstream(
    servers: &[(&str, bool)],
    breaker: Option<Breaker>,
    passive: Option<Passive>,
) -> Upstream {
    Upstream {
        app: None,
        balance: Balance::RoundRobin,
        servers: servers
            .iter()
            .map(|(addr, backup)| UpstreamServer {
                addr: addr.parse().expect("addr"),
                weight: 1,
                backup: *backup,
            })
            .collect(),
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(1),
        retries: 1,
        retry_backoff: Duration::from_millis(10),
        retry_backoff_max: Duration::from_millis(100),
        retry_budget: 0.2,
        health: None,
        passive,
        breaker,
    }
}

fn pool(upstream: &Upstream) -> Pool {
    let client = crate::proxy::client::build(Duration::from_secs(1));
    Pool::new("app", upstream, client, &Registry::default(), false, None)
}

const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[tokio::test(start_paused = true)]
async fn breaker_opens_after_failures_and_half_opens_after_open_for() {
    let settings = Breaker {
        failures: 3,
        open_for: Duration::from_secs(10),
    };
    let pool = pool(&upstream(&[("127.0.0.1:1", false)], Some(settings), None));
    for _ in 0..3 {
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Server(0)
        ));
        pool.record(0, false);
    }
    match pool.pick(CLIENT, &Tried::default()) {
        Pick::Unavailable { retry_after } => assert_eq!(retry_after, Duration::from_secs(10)),
        other => panic!("breaker should be open, got {other:?}"),
    }
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(matches!(
        pool.pick(CLIENT, &Tried::default()),
        Pick::Unavailable { .. }
    ));
    tokio::time::advance(Duration::from_secs(1)).await;
    // Half-open: exactly one trial.
    assert!(matches!(
        pool.pick(CLIENT, &Tried::default()),
        Pick::Server(0)
    ));
    assert!(matches!(
        pool.pick(CLIENT, &Tried::default()),
        Pick::Unavailable { .. }
    ));
    pool.record(0, true);
    for _ in 0..5 {
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Server(0)
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn passive_ejection_expires_and_respects_max_ejected_percent() {
    let passive = Passive {
        max_fails: 2,
        window: Duration::from_secs(10),
        eject_for: Duration::from_secs(30),
        max_ejected_percent: 50,
    };
    let pool = pool(&upstream(
        &[("127.0.0.1:1", false), ("127.0.0.1:2", false)],
        None,
        Some(passive),
    ));
    pool.record(0, false);
    pool.record(0, false);
    for _ in 0..4 {
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Server(1)
        ));
    }
    // Ejecting the second too would exceed 50% of the pool.
    pool.record(1, false);
    pool.record(1, false);
    assert!(matches!(
        pool.pick(CLIENT, &Tried::default()),
        Pick::Server(1)
    ));
    tokio::time::advance(Duration::from_secs(30)).await;
    let mut seen = [false; 2];
    for _ in 0..4 {
        if let Pick::Server(i) = pool.pick(CLIENT, &Tried::default()) {
            seen[i] = true;
        }
    }
    assert_eq!(
        seen,
        [true, true],
        "the ejected server is back after eject_for"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lone_server_is_not_ejected_unless_max_ejected_percent_is_100() {
    for (percent, ejected) in [(50, false), (99, false), (100, true)] {
        let passive = Passive {
            max_fails: 2,
            window: Duration::from_secs(10),
            eject_for: Duration::from_secs(30),
            max_ejected_percent: percent,
        };
        let pool = pool(&upstream(&[("127.0.0.1:1", false)], None, Some(passive)));
        for _ in 0..10 {
            pool.record(0, false);
        }
        let pick = pool.pick(CLIENT, &Tried::default());
        assert_eq!(
            matches!(pick, Pick::Unavailable { .. }),
            ejected,
            "max_ejected_percent = {percent}"
        );
    }
    // Three servers at 50%: one may go, not two.
    let passive = Passive {
        max_fails: 1,
        window: Duration::from_secs(10),
        eject_for: Duration::from_secs(30),
        max_ejected_percent: 50,
    };
    let pool = pool(&upstream(
        &[
            ("127.0.0.1:1", false),
            ("127.0.0.1:2", false),
            ("127.0.0.1:3", false),
        ],
        None,
        Some(passive),
    ));
    pool.record(0, false);
    pool.record(1, false);
    let mut seen = [false; 3];
    for _ in 0..30 {
        if let Pick::Server(i) = pool.pick(CLIENT, &Tried::default()) {
            seen[i] = true;
        }
    }
    assert_eq!(seen, [false, true, true]);
}

#[tokio::test]
async fn backups_only_when_no_primary_and_retries_avoid_tried_servers() {
    let pool = pool(&upstream(
        &[
            ("127.0.0.1:1", false),
            ("127.0.0.1:2", false),
            ("127.0.0.1:3", true),
        ],
        None,
        None,
    ));
    for _ in 0..10 {
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Server(0 | 1)
        ));
    }
    let mut tried = Tried::default();
    tried.insert(0);
    for _ in 0..4 {
        assert!(matches!(pool.pick(CLIENT, &tried), Pick::Server(1)));
    }
    pool.members[0].state.set_health(Health::Down, "test");
    pool.members[1].state.set_draining(true);
    for _ in 0..4 {
        assert!(matches!(
            pool.pick(CLIENT, &Tried::default()),
            Pick::Server(2)
        ));
    }
}
