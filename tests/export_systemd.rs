//! `wharf export systemd`: a unit that systemd itself accepts
//! (`systemd-analyze verify`, Debian package `systemd`), that gives wharf
//! time to drain and stop its apps, reloads with SIGHUP, and runs a
//! non-root wharf on port 80.

use std::path::Path;
use std::process::{Command, Output};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf");

fn export(args: &[&str]) -> Output {
    Command::new(WHARF)
        .args(["export", "systemd"])
        .args(args)
        .output()
        .expect("run wharf export systemd")
}

/// `systemd-analyze verify` on `unit`: its complaints (empty when it
/// accepts the unit as it is).
fn verify(unit: &Path) -> String {
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
        .expect("systemd-analyze (Debian package systemd) runs");
    let complaints = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "verify failed: {complaints}");
    complaints
}

const CONFIG: &str = r#"
[server]
listen = ["0.0.0.0:80"]
admin = "127.0.0.1:9180"
shutdown_timeout = "20s"

[[site]]
  [[site.route]]
  path = "/"
  upstream = "web"

[upstream.web]
app = "web"

[app.web]
command = ["/usr/bin/env", "python3", "-m", "http.server"]
port = 9100
stop_timeout = "15s"

[app.worker]
command = ["/usr/bin/env", "sleep", "1000"]
port = 9200
stop_timeout = "2s"
"#;

#[test]
fn the_unit_is_accepted_by_systemd_and_waits_for_the_drain_and_the_apps() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A directory with a space: the paths must reach ExecStart quoted.
    let site = dir.path().join("my site");
    std::fs::create_dir(&site).expect("mkdir");
    let config = site.join("wharf.toml");
    std::fs::write(&config, CONFIG).expect("write config");

    let output = export(&[
        "-c",
        config.to_str().expect("utf-8 path"),
        "--user",
        "wharf",
    ]);
    let unit = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.path().join("wharf.service");
    std::fs::write(&path, &unit).expect("write unit");
    assert_eq!(verify(&path), "", "systemd complained about:\n{unit}");

    let canonical = std::fs::canonicalize(&config).expect("canonical");
    let lines: Vec<&str> = unit.lines().collect();
    for expected in [
        format!("ExecStart={WHARF} run --config \"{}\"", canonical.display()),
        "ExecReload=/bin/kill -HUP $MAINPID".to_string(),
        // wharf drains, then stops its apps: only it gets SIGTERM.
        "KillMode=mixed".to_string(),
        // shutdown_timeout 20s + the longest app stop_timeout 15s + 5s.
        "TimeoutStopSec=40s".to_string(),
        "LimitNOFILE=1048576".to_string(),
        "User=wharf".to_string(),
        // Port 80 without root.
        "AmbientCapabilities=CAP_NET_BIND_SERVICE".to_string(),
        "WantedBy=multi-user.target".to_string(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "no {expected:?} in:\n{unit}"
        );
    }
    // No ACME or local CA in this config: no state directory to own.
    assert!(!unit.contains("StateDirectory"), "{unit}");
}

#[test]
fn without_a_user_wharf_runs_as_root_with_no_capabilities_to_add() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = [\"127.0.0.1:8080\"]\n\n[[site]]\n  [[site.route]]\n  path = \"/\"\n  static = \".\"\n",
    )
    .expect("write config");
    let output = export(&["-c", config.to_str().expect("utf-8 path")]);
    assert!(output.status.success(), "{output:?}");
    let unit = String::from_utf8_lossy(&output.stdout).to_string();
    let path = dir.path().join("wharf.service");
    std::fs::write(&path, &unit).expect("write unit");
    assert_eq!(verify(&path), "", "systemd complained about:\n{unit}");
    assert!(!unit.contains("User="), "{unit}");
    assert!(!unit.contains("AmbientCapabilities"), "{unit}");
    // The default shutdown_timeout (30s), no apps, 5s of margin.
    assert!(unit.lines().any(|l| l == "TimeoutStopSec=35s"), "{unit}");
    assert!(
        unit.contains("--user wharf"),
        "the comment says how: {unit}"
    );
}

#[test]
fn a_missing_config_or_a_bad_user_name_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nowhere.toml");
    let output = export(&["-c", missing.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("cannot read the config"), "{said}");
    assert!(said.contains("nowhere.toml"), "{said}");
    assert!(output.stdout.is_empty());

    let config = dir.path().join("wharf.toml");
    std::fs::write(&config, "[server]\nlisten = [\"127.0.0.1:8080\"]\n").expect("write");
    let output = export(&[
        "-c",
        config.to_str().expect("utf-8 path"),
        "--user",
        "web admin",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("is not a user name systemd accepts"),
        "{said}"
    );

    // A config with an error: the error with its line, no unit.
    std::fs::write(&config, "[server]\nlisten = [\"nowhere\"]\n").expect("write");
    let output = export(&["-c", config.to_str().expect("utf-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains(":2:"), "{said}");
    assert!(output.stdout.is_empty());
}
