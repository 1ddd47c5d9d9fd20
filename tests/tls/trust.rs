//! `wharf trust`: after it, headless Chromium (through its NSS database)
//! and, as root, curl (through the system store) accept the local CA's
//! certificates with no flag; after `--uninstall` they refuse them again.
//! Chromium runs with a HOME of its own, so the user's real browser
//! databases are never touched; the system store is the machine's, and
//! the CA is removed from it however the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::client::*;
use crate::pebble::require;
use crate::support::Wharf;

/// Runs `wharf trust` (or `--uninstall`) with HOME at `home`.
fn trust(config: &Path, home: &Path, uninstall: bool) -> Output {
    let mut command = Command::new(crate::support::WHARF);
    command
        .args(["trust", "-c"])
        .arg(config)
        .env("HOME", home)
        .env_remove("SUDO_USER");
    if uninstall {
        command.arg("--uninstall");
    }
    command.output().expect("run wharf trust")
}

/// Removes the CA from every store when the test ends, passed or not.
struct Trusted {
    config: PathBuf,
    home: PathBuf,
}

impl Drop for Trusted {
    fn drop(&mut self) {
        let _ = trust(&self.config, &self.home, true);
    }
}

/// The page headless Chromium shows for `url` ("" when it refuses the
/// certificate: an interstitial is not dumped).
fn chromium_page(home: &Path, url: &str) -> String {
    let chromium = require("chromium");
    let output = Command::new("timeout")
        .arg("60")
        .arg(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--dump-dom",
            url,
        ])
        .env("HOME", home)
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// curl with the system store only.
fn curl(url: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10", url])
        .output()
        .expect("run curl")
}

#[test]
fn after_wharf_trust_browsers_and_the_system_accept_the_local_ca_and_after_uninstall_refuse_it() {
    require("certutil");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let (http, https) = (free_port(), free_port());
    let tls = format!(
        "mode = \"internal\"\nstorage = \"{}\"\n",
        dir.path().join("state").display()
    );
    let sites = "[[site]]\nhosts = [\"localhost\"]\n[[site.route]]\npath = \"/\"\n\
                 respond = \"<h1>trusted here</h1>\"\ncontent_type = \"text/html; charset=utf-8\"\n";
    let text = config(dir.path(), http, https, sites, &tls);
    let config_path = dir.path().join("wharf.toml");
    std::fs::write(&config_path, &text).expect("write config");
    let url = format!("https://localhost:{https}/");

    // Before: the CA does not exist yet; `wharf trust` makes it.
    let _trusted = Trusted {
        config: config_path.clone(),
        home: home.clone(),
    };
    let trusted = trust(&config_path, &home, false);
    let said = String::from_utf8_lossy(&trusted.stdout).into_owned();
    assert!(trusted.status.success(), "{trusted:?}");
    assert!(
        said.contains("ok    Chromium and Chrome") && said.contains(".pki/nssdb"),
        "{said}"
    );
    if root {
        assert!(said.contains("ok    system trust store: wrote"), "{said}");
    } else {
        assert!(said.contains("sudo wharf trust -c"), "{said}");
    }

    let _wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    assert!(
        chromium_page(&home, &url).contains("<h1>trusted here</h1>"),
        "Chromium refused the local CA after wharf trust"
    );
    if root {
        let fetched = curl(&url);
        assert!(fetched.status.success(), "{fetched:?}");
        assert_eq!(
            String::from_utf8_lossy(&fetched.stdout),
            "<h1>trusted here</h1>"
        );
    }

    // After --uninstall both refuse the certificate again.
    let removed = trust(&config_path, &home, true);
    assert!(removed.status.success(), "{removed:?}");
    let said = String::from_utf8_lossy(&removed.stdout).into_owned();
    assert!(said.contains("removed wharf-local-ca-"), "{said}");
    assert!(
        !chromium_page(&home, &url).contains("trusted here"),
        "Chromium still accepts the CA after --uninstall"
    );
    if root {
        let fetched = curl(&url);
        assert_eq!(fetched.status.code(), Some(60), "{fetched:?}");
    }
}

#[test]
fn trust_refuses_a_config_without_a_local_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("wharf.toml");
    std::fs::write(
        &config_path,
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"off\"\n",
    )
    .expect("write config");
    let output = trust(&config_path, dir.path(), false);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("not \"internal\""), "{said}");
}
