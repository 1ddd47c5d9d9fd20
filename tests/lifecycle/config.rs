//! Config files as the CLI meets them: every error printed with file,
//! line and column, `wharf check` and `--print` redacting secrets, and a
//! missing file named plainly by the admin commands.

use super::*;

#[test]
fn config_errors_are_all_printed_with_file_line_and_column() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"0.0.0.0:80x\"]\nshutdown_timeout = \"soon\"\n\n\
         [[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"missing\"\n\
         [site.cors]\n  origins = [\"*\"]\n  credentials = true\n",
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .expect("run wharf check");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "bad.toml:2:",
        "server.listen[0]",
        "bad.toml:3:",
        "server.shutdown_timeout",
        "bad.toml:8:",
        "missing",
        "credentials",
        "fix:",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("4 errors in"), "{stderr}");
}

#[test]
fn check_accepts_a_good_config_and_print_redacts_file_secrets() {
    let dir = tempfile::tempdir().expect("dir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "hunter2-very-secret\n").expect("write");
    let path = dir.path().join("wharf.toml");
    std::fs::write(
        &path,
        format!(
            "[[site]]\n  [[site.route]]\n  path = \"/\"\n  respond = \"${{file:{}}}\"\n",
            secret.display()
        ),
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["check", "--print", "-c"])
        .arg(&path)
        .output()
        .expect("run wharf check");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("<redacted>"), "{printed}");
    assert!(!printed.contains("hunter2"), "secret leaked:\n{printed}");
    assert!(
        printed.contains("shutdown_timeout"),
        "defaults are shown:\n{printed}"
    );
}

#[test]
fn admin_commands_name_a_missing_config_file_plainly() {
    let dir = tempfile::tempdir().expect("dir");
    for args in [&["status"][..], &["reload"], &["deploy", "web"]] {
        let output = Command::new(WHARF)
            .args(args)
            .args(["-c", "missing.toml"])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run wharf");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("missing.toml does not exist"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("broken"), "{args:?}: {stderr}");
    }
}
