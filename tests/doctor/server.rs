//! `wharf doctor` on wharf's own side of the machine: a listen port held
//! by another process, a privileged port without the right to bind it,
//! the ports of the wharf already serving this config, and the open-file
//! limit of the running wharf.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::support::*;
use super::{doctor, doctor_through, write_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_port_held_by_another_process_fails_naming_the_holder() {
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), &addr.to_string(), "");
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    let line = report
        .line("FAIL", &[&format!("server.listen {addr}")])
        .unwrap_or_else(|| panic!("no FAIL line for {addr}:\n{}", report.stdout));
    assert!(
        line.contains(&format!("held by pid {}", std::process::id())),
        "{line}"
    );
    assert!(line.contains("choose another port"), "{line}");
    assert!(report.stdout.contains("\n1 problem, "), "{}", report.stdout);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privileged_port_for_a_user_without_the_capability_fails_with_how_to_grant_it() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching to user nobody needs root, and this test is not root");
        return;
    }
    let Some(port) = privileged_free_port() else {
        return;
    };
    // nobody must be able to read the config, and to reach it.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod dir");
    let config = write_config(dir.path(), &format!("127.0.0.1:{port}"), "");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))
        .expect("chmod config");
    // 65534 is nobody, and its group (nogroup or nobody), on Linux.
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let report = doctor_through(&nobody, &config).await;
    assert_eq!(report.code, 1, "{}{}", report.stdout, report.stderr);
    let line = report
        .line("FAIL", &[&format!("server.listen 127.0.0.1:{port}:")])
        .unwrap_or_else(|| panic!("{}{}", report.stdout, report.stderr));
    assert!(line.contains("Permission denied"), "{line}");
    assert!(
        line.contains("ports below 1024 need root or CAP_NET_BIND_SERVICE"),
        "{line}"
    );
    assert!(
        line.contains("`wharf export systemd --user wharf` writes a unit that grants it"),
        "{line}"
    );
    let binary = std::fs::canonicalize(WHARF).expect("canonical wharf path");
    assert!(
        line.contains(&format!(
            "`sudo setcap cap_net_bind_service=+ep {}`",
            binary.display()
        )),
        "{line}"
    );
    assert_eq!(report.lines("FAIL").len(), 1, "{}", report.stdout);
}

/// A free loopback port that only root (or CAP_NET_BIND_SERVICE) may bind:
/// below 1024 and below `net.ipv4.ip_unprivileged_port_start`. None, with
/// the reason printed, when there is no such port.
fn privileged_free_port() -> Option<u16> {
    let sysctl = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    let start = match std::fs::read_to_string(sysctl) {
        Ok(text) => text.trim().parse::<u16>().expect("a port number"),
        Err(error) => {
            eprintln!("skipped: cannot read {sysctl} ({error})");
            return None;
        }
    };
    let port = (1..start.min(1024))
        .rev()
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok());
    if port.is_none() {
        eprintln!("skipped: {sysctl} is {start}, so any user may bind every port (or none below it is free)");
    }
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ports_of_the_wharf_serving_this_config_are_reported_as_served() {
    let ports = free_ports(4);
    let (listen, admin, app) = (ports, ports + 1, ports + 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:{listen}\"]\nadmin = \"127.0.0.1:{admin}\"\n\n\
         [log]\naccess = \"off\"\n\n\
         [app.web]\ncommand = [\"{WHARF}\", \"echo\"]\nport = {app}\n"
    );
    let wharf = Wharf::start_with_config(dir, &text);
    // The instance is up once its port answers.
    let instance = std::net::SocketAddr::from(([127, 0, 0, 1], app));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(instance).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "app instance never listened: {:?}",
            wharf.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = doctor(&wharf.config_path).await;
    assert_eq!(report.code, 0, "{}", report.stdout);
    assert!(report.lines("FAIL").is_empty(), "{}", report.stdout);
    let pid = wharf.pid();
    for addr in [listen, admin] {
        let served = format!("wharf (pid {pid}) is serving on 127.0.0.1:{addr}");
        assert!(
            report.line("ok", &[&served, "`wharf reload`"]).is_some(),
            "{served}:\n{}",
            report.stdout
        );
    }
    let range = format!("app.web ports {app}-{}", app + 1);
    assert!(
        report
            .line("ok", &[&range, &format!("instances of wharf (pid {pid})")])
            .is_some(),
        "{}",
        report.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_file_limit_is_read_from_the_running_wharf() {
    let ports = free_ports(2);
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:{}\"]\nadmin = \"127.0.0.1:{}\"\n\n[log]\naccess = \"off\"\n",
        ports,
        ports + 1
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let wharf = Wharf::start_with_config_under_ulimit(dir, &text, "-n 1024");
    let report = doctor(&wharf.config_path).await;
    let pid = wharf.pid();
    let warned = report.line(
        "warn",
        &[
            &format!("open files of wharf (pid {pid})"),
            "at most 1024 files",
            "LimitNOFILE=65536",
        ],
    );
    assert!(warned.is_some(), "{}", report.stdout);
    // A warning, not a failure: wharf works, with fewer connections.
    assert_eq!(report.code, 0, "{}", report.stdout);
}
