//! When primaries are down: backups serve only then, and with every
//! server down clients get a 503 with `Retry-After`.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_serves_only_when_every_primary_is_down() {
    let primary = echo().await;
    let backup = echo().await;
    let config = |primary: SocketAddr| {
        format!(
            "{}[upstream.app]\nservers = [\"{primary}\", {{ addr = \"{backup}\", backup = true }}]\nretries = 0\n\
             [upstream.app.passive]\nmax_fails = 1\neject_for = \"30s\"\nmax_ejected_percent = 100\n",
            site()
        )
    };
    let wharf = Wharf::start("", &config(primary));
    let (counts, failures) = spread(&wharf.url("/"), 200, 2, Vec::new()).await;
    assert_eq!(failures, 0);
    assert_eq!(
        counts.get(&backup.port()),
        None,
        "backup used while the primary is up: {counts:?}"
    );

    // With the primary gone, the first failure ejects it and the backup takes over.
    let dead = dead_addr();
    wharf.rewrite("", &config(dead));
    wharf.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = client();
    let first = send(&client, Method::GET, &wharf.url("/"), &[], b"").await;
    assert_eq!(first.status, 502);
    for _ in 0..20 {
        let reply = send(&client, Method::GET, &wharf.url("/"), &[], b"").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["port"].as_u64(), Some(backup.port() as u64));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_servers_down_gives_503_with_retry_after() {
    let upstream = format!(
        "{}[upstream.app]\nservers = [\"{}\"]\nretries = 0\n[upstream.app.passive]\nmax_fails = 1\neject_for = \"5s\"\nmax_ejected_percent = 100\n",
        site(),
        dead_addr()
    );
    let wharf = Wharf::start("", &upstream);
    let client = client();
    assert_eq!(
        send(&client, Method::GET, &wharf.url("/"), &[], b"")
            .await
            .status,
        502
    );
    let reply = send(&client, Method::GET, &wharf.url("/"), &[], b"").await;
    assert_eq!(reply.status, 503);
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=5).contains(&retry_after), "Retry-After {retry_after}");
    let logged = eventually(Duration::from_secs(5), || {
        wharf.logs_contain("no upstream server is available")
    })
    .await;
    assert!(logged);
}
