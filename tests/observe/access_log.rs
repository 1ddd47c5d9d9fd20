//! The access log file and log rotation: after logrotate moves it away,
//! SIGUSR1 (or a reload) makes wharf write a new file, losing and
//! repeating no line.

use super::*;

/// The `X-Request-Id`s of the access log lines in `file`.
fn logged_ids(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["http"]["request"]["id"].as_str().map(str::to_string))
        .collect()
}

/// Sends one request per id, each with that `X-Request-Id`.
async fn requests_with_ids(wharf: &Wharf, ids: &[String]) {
    for id in ids {
        let reply = get(&wharf.url("/"), &[("x-request-id", id)]).await;
        assert_eq!(reply.status, 200);
    }
}

/// What logrotate does: move the log away, send `signal`, and expect the
/// lines of later requests in a new file, none lost or written twice.
async fn rotated_access_log_is_reopened_on(signal: &str, reopened: &str) {
    let mut wharf = Wharf::start(
        "",
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  respond = \"ok\"\n",
    );
    let live = wharf.dir.path().join("access.log");
    let rotated = wharf.dir.path().join("access.log.1");
    let ids = |from: usize, to: usize| -> Vec<String> {
        (from..to)
            .map(|i| format!("{signal}-request-{i}"))
            .collect()
    };

    requests_with_ids(&wharf, &ids(0, 3)).await;
    std::fs::rename(&live, &rotated).expect("rotate the access log");
    requests_with_ids(&wharf, &ids(3, 5)).await;
    // Until the signal, the moved file is still the open one.
    let before = eventually(Duration::from_secs(5), || logged_ids(&rotated).len() == 5).await;
    assert!(before, "rotated file: {:?}", logged_ids(&rotated));

    wharf.signal(signal);
    let done = eventually(Duration::from_secs(5), || wharf.logs_contain(reopened)).await;
    assert!(
        done,
        "no {reopened:?} after SIG{signal}: {:?}",
        wharf.logs()
    );
    assert!(wharf.is_running(), "SIG{signal} stopped wharf");
    requests_with_ids(&wharf, &ids(5, 9)).await;
    let after = eventually(Duration::from_secs(5), || logged_ids(&live).len() == 4).await;
    assert!(after, "new access.log: {:?}", logged_ids(&live));

    assert_eq!(logged_ids(&rotated), ids(0, 5));
    assert_eq!(logged_ids(&live), ids(5, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_reopens_a_rotated_access_log() {
    rotated_access_log_is_reopened_on("USR1", "access log reopened").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reopens_a_rotated_access_log() {
    rotated_access_log_is_reopened_on("HUP", "config reloaded").await;
}
