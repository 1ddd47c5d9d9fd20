//! `wharf doctor` says what would keep a config from working on this
//! machine, one line per check, and exits 1 when something will fail.
//!
//! The checks of wharf's own ports and limits are in `server.rs`, of
//! upstreams and apps in `backends.rs`, of certificates in
//! `certificates.rs`.

#[path = "../support/mod.rs"]
mod support;

mod backends;
mod certificates;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;

/// What `wharf doctor -c config` printed, and its exit code.
struct Doctor {
    code: i32,
    stdout: String,
    stderr: String,
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
    doctor_through(&[], config).await
}

/// `wharf doctor -c config` started by `wrapper`, a command that runs the
/// rest of its arguments (as another user, say); with none, directly.
async fn doctor_through(wrapper: &[&str], config: &Path) -> Doctor {
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = tokio::process::Command::new(program);
            command.args(args).arg(WHARF);
            command
        }
        None => tokio::process::Command::new(WHARF),
    };
    let run = command
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
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
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
