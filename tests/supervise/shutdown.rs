//! Shutdown: no instance outlives wharf, whether it is stopped with
//! SIGTERM or killed with SIGKILL.

use super::*;

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && (l.contains("Z") || l.contains("X")))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_instance_outlives_wharf_after_sigterm_or_sigkill() {
    for signal in ["TERM", "KILL"] {
        let port = free_ports(4);
        let mut wharf = Wharf::start("", &app_site(&echo_app(port, ""), ""));
        wait_serving(&wharf, 2).await;
        let pids: Vec<u64> = events(&wharf, "instance started")
            .iter()
            .filter_map(|v| v["pid"].as_u64())
            .collect();
        assert_eq!(pids.len(), 2);
        assert!(pids.iter().all(|p| alive(*p)));
        wharf.signal(signal);
        wharf
            .wait_exit(Duration::from_secs(10))
            .expect("wharf exited");
        let gone = eventually(Duration::from_secs(3), || pids.iter().all(|p| !alive(*p))).await;
        assert!(gone, "instances {pids:?} outlived wharf after SIG{signal}");
    }
}
