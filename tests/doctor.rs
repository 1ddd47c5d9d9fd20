//! `wharf doctor` says what would keep a config from working on this
//! machine, one line per check, and exits 1 when something will fail.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

/// What `wharf doctor -c config` printed, and its exit code.
struct Doctor {
    code: i32,
    stdout: String,
}

impl Doctor {
    /// The lines starting with `tag` ("ok", "warn", "FAIL").
    fn lines(&self, tag: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|line| line.split(' ').next() == Some(tag))
            .collect()
    }

    /// The first `tag` line containing every one of `needles`.
    fn line(&self, tag: &str, needles: &[&str]) -> Option<&str> {
        self.lines(tag)
            .into_iter()
            .find(|line| needles.iter().all(|needle| line.contains(needle)))
    }
}

async fn doctor(config: &Path) -> Doctor {
    let run = tokio::process::Command::new(WHARF)
        .arg("doctor")
        .arg("-c")
        .arg(config)
        .env_remove("PORT")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("wharf doctor finished within 60 s")
        .expect("wharf doctor ran");
    Doctor {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

/// `wharf.toml` in `dir`: a free listen port (or `listen`), no admin API,
/// no access log, then `body`.
fn write_config(dir: &Path, listen: &str, body: &str) -> PathBuf {
    let path = dir.join("wharf.toml");
    let text = format!(
        "[server]\nlisten = [\"{listen}\"]\nadmin = \"off\"\n\n[log]\naccess = \"off\"\n\n{body}\n"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn free_listen() -> String {
    format!("127.0.0.1:{}", free_ports(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_config_passes_every_check() {
    let backend = echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("public")).expect("mkdir");
    std::fs::write(dir.path().join("public/index.html"), "hello").expect("index");
    let listen = free_listen();
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/static/\"\n  static = \"public\"\n\
         \x20 [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{backend}\"]\n\n\
         [upstream.app.health]\npath = \"/health\"\n"
    );
    let config = write_config(dir.path(), &listen, &body);
    let report = doctor(&config).await;
    assert_eq!(report.code, 0, "{}", report.stdout);
    assert!(report.lines("FAIL").is_empty(), "{}", report.stdout);
    assert!(
        report.line("ok", &["config", "is valid"]).is_some(),
        "{}",
        report.stdout
    );
    assert!(
        report
            .line("ok", &[&format!("server.listen {listen}")])
            .is_some(),
        "{}",
        report.stdout
    );
    assert!(
        report
            .line(
                "ok",
                &[
                    &format!("upstream.app server {backend}"),
                    "GET /health with 200"
                ]
            )
            .is_some(),
        "{}",
        report.stdout
    );
    assert!(
        report
            .line("ok", &["static */static/", "has index.html"])
            .is_some(),
        "{}",
        report.stdout
    );
    assert!(
        report.line("ok", &["open files"]).is_some()
            || report.line("warn", &["open files"]).is_some(),
        "{}",
        report.stdout
    );
    let last = report.stdout.lines().last().unwrap_or_default();
    assert!(last.starts_with("no problems, "), "{}", report.stdout);
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_with_nothing_listening_fails_and_a_failing_health_path_warns() {
    let dead = dead_addr();
    let backend = echo().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"gone\"\n\
         \x20 [[site.route]]\n  path = \"/api/\"\n  upstream = \"api\"\n\n\
         [upstream.gone]\nservers = [\"{dead}\"]\n\n\
         [upstream.api]\nservers = [\"{backend}\"]\n\n\
         [upstream.api.health]\npath = \"/health?status=404\"\n"
    );
    let config = write_config(dir.path(), &free_listen(), &body);
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    let line = report
        .line("FAIL", &[&format!("upstream.gone server {dead}")])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(
        line.contains(&format!(
            "nothing listens on {dead}; start the app or fix upstream.gone.servers"
        )),
        "{line}"
    );
    let line = report
        .line("warn", &[&format!("upstream.api server {backend}")])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(line.contains("answered 404, not 2xx"), "{line}");
    assert!(line.contains("would be marked down"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_whose_program_is_missing_fails_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_ports(2);
    let body = format!("[app.web]\ncommand = [\"./no-such-server\"]\nport = {port}\n");
    let config = write_config(dir.path(), &free_listen(), &body);
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    let line = report
        .line("FAIL", &["app.web", "no-such-server"])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(line.contains("does not exist"), "{line}");
    assert!(
        line.contains("fix the first element of app.web.command"),
        "{line}"
    );
    assert!(
        report
            .line(
                "ok",
                &[&format!("app.web ports {port}-{} are free", port + 1)]
            )
            .is_some(),
        "{}",
        report.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_port_taken_by_another_process_fails_naming_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_ports(4);
    // The second instance's port.
    let held = TcpListener::bind(("127.0.0.1", port + 1)).expect("bind");
    let body =
        format!("[app.web]\ncommand = [\"{WHARF}\", \"echo\"]\ninstances = 2\nport = {port}\n");
    let config = write_config(dir.path(), &free_listen(), &body);
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    assert!(
        report.line("ok", &["app.web:", "can be started"]).is_some(),
        "{}",
        report.stdout
    );
    let line = report
        .line("FAIL", &[&format!("app.web port {}", port + 1)])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(
        line.contains(&format!("held by pid {}", std::process::id())),
        "{line}"
    );
    assert!(line.contains("move app.web.port"), "{line}");
    assert_eq!(report.lines("FAIL").len(), 1, "{}", report.stdout);
    drop(held);
}

/// A self-signed pair for `names`, valid from `not_before` to `not_after`.
fn certificate(
    names: &[&str],
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    let cert = params.self_signed(&key).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// A config serving `hosts` over HTTPS with the pair in files mode.
fn tls_config(dir: &Path, pair: (String, String), hosts: &str) -> PathBuf {
    std::fs::write(dir.join("site.pem"), pair.0).expect("cert");
    std::fs::write(dir.join("site.key"), pair.1).expect("key");
    let https = free_ports(1);
    let body = format!(
        "[tls]\nmode = \"files\"\ncert = \"site.pem\"\nkey = \"site.key\"\n\n\
         [[site]]\nhosts = [{hosts}]\n  [[site.route]]\n  path = \"/\"\n  respond = \"hi\"\n"
    );
    let path = write_config(dir, &free_listen(), &body);
    let text = std::fs::read_to_string(&path).expect("read");
    let text = text.replacen(
        "admin = \"off\"",
        &format!("admin = \"off\"\nhttps = [\"127.0.0.1:{https}\"]"),
        1,
    );
    std::fs::write(&path, text).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = certificate(&["a.test"], (2020, 1, 1), (2021, 1, 1));
    let config = tls_config(dir.path(), pair, "\"a.test\"");
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    assert!(
        report.line("ok", &["site.pem", "load and match"]).is_some(),
        "{}",
        report.stdout
    );
    let line = report
        .line("FAIL", &["tls.cert", "site.pem"])
        .unwrap_or_else(|| panic!("{}", report.stdout));
    assert!(line.contains("expired on 2021-01-01"), "{line}");
    assert!(line.contains("wharf reload"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_naming_a_site_host_warns_for_that_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pair = certificate(&["a.test", "*.b.test"], (2020, 1, 1), (2100, 1, 1));
    let config = tls_config(dir.path(), pair, "\"a.test\", \"www.b.test\", \"c.test\"");
    let report = doctor(&config).await;
    assert_eq!(report.code, 0, "{}", report.stdout);
    assert!(
        report
            .line("ok", &["site.pem", "is valid until 2100-01-01"])
            .is_some(),
        "{}",
        report.stdout
    );
    let uncovered: Vec<&str> = report
        .lines("warn")
        .into_iter()
        .filter(|line| line.contains("tls.cert"))
        .collect();
    assert_eq!(uncovered.len(), 1, "{}", report.stdout);
    assert!(uncovered[0].contains("for c.test"), "{}", uncovered[0]);
    assert!(
        uncovered[0].contains("names only a.test, *.b.test"),
        "{}",
        uncovered[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_error_is_shown_with_its_line_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "127.0.0.1:80x", "");
    let report = doctor(&config).await;
    assert_eq!(report.code, 1, "{}", report.stdout);
    let location = format!("{}:2:", config.display());
    assert!(
        report
            .stdout
            .lines()
            .any(|line| line.starts_with(&location) && line.contains("server.listen[0]")),
        "{}",
        report.stdout
    );
    assert!(
        report
            .line("FAIL", &["config", "cannot be loaded"])
            .is_some(),
        "{}",
        report.stdout
    );
    // Nothing else is checked with a config that cannot be loaded.
    assert_eq!(report.lines("ok").len(), 0, "{}", report.stdout);
    assert!(
        report.stdout.ends_with("1 problem, no warnings\n"),
        "{}",
        report.stdout
    );
}
