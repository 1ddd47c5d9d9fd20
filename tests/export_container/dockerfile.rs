//! The Dockerfile: hadolint accepts it, the build checks the config where
//! the image holds it, and what the image would lack is said.

use std::process::Command;

use super::*;

#[test]
fn the_dockerfile_passes_hadolint_and_fails_the_build_when_a_file_is_missing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = site(dir.path(), 8080, 9180, "");
    let config_arg = config.to_str().expect("utf-8");
    let output = export(&["dockerfile", "-c", config_arg]);
    let dockerfile = stdout(&output);
    assert!(
        output.stderr.is_empty(),
        "no warning for a self-contained directory: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = dir.path().join("Dockerfile");
    std::fs::write(&path, &dockerfile).expect("write Dockerfile");
    let lint = Command::new(tool("hadolint"))
        .arg(&path)
        .output()
        .expect("run hadolint");
    assert!(
        lint.status.success(),
        "hadolint:\n{}\n{dockerfile}",
        String::from_utf8_lossy(&lint.stdout)
    );

    let context = config.parent().expect("dir").to_str().expect("utf-8");
    let lines: Vec<&str> = dockerfile.lines().collect();
    for expected in [
        format!("COPY [\".\", \"{context}/\"]"),
        format!("WORKDIR \"{context}\""),
        "USER 10001:10001".to_string(),
        "EXPOSE 8080".to_string(),
        "STOPSIGNAL SIGTERM".to_string(),
        "ENTRYPOINT [\"/usr/bin/tini\", \"--\", \"/usr/local/bin/wharf\"]".to_string(),
        format!("CMD [\"run\", \"--config\", \"{config_arg}\"]"),
        // The longest start_timeout of an app.
        "HEALTHCHECK --interval=10s --timeout=5s --start-period=40s --retries=3 \\".to_string(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "no {expected:?} in:\n{dockerfile}"
        );
    }
    // The binary the header has put beside the config comes in with the
    // directory, once, and is linked to where the commands run it from.
    assert!(
        dockerfile.contains("#   cp \"$(command -v wharf)\" wharf "),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains(&format!(
            " && ln -s '{context}/wharf' /usr/local/bin/wharf\n"
        )),
        "{dockerfile}"
    );
    let copies: Vec<&&str> = lines.iter().filter(|l| l.starts_with("COPY")).collect();
    assert_eq!(copies.len(), 1, "{dockerfile}");
    // docker stop must wait for the drain (20s) and the app (15s), + 5s.
    assert!(
        dockerfile.contains("docker run --stop-timeout 40 -p 8080:8080"),
        "{dockerfile}"
    );
    // Port 8080 needs no capability.
    assert!(!dockerfile.contains("setcap"), "{dockerfile}");

    // The build runs `wharf check` on the config where the image holds it.
    let check = exec_form(&dockerfile, "RUN [");
    assert_eq!(check[1..], ["check", "--config", config_arg]);
    let checked = run_in_place(&check);
    assert!(checked.status.success(), "{checked:?}");
    std::fs::remove_dir_all(config.parent().expect("dir").join("public")).expect("rm public");
    let checked = run_in_place(&check);
    assert!(
        !checked.status.success(),
        "a missing static root fails the build"
    );
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(said.contains("public"), "{said}");
}

#[test]
fn files_outside_the_directory_are_warned_about_and_loopback_listeners_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = site(dir.path(), 80, 9180, "");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("elsewhere");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        text.replace("static = \"public\"", "static = \"../elsewhere\"")
            .replace("[\"./server\"]", "[\"python3\", \"-m\", \"http.server\"]"),
    )
    .expect("write");
    let output = export(&["dockerfile", "-c", config.to_str().expect("utf-8")]);
    let dockerfile = stdout(&output);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("site[0].route[0].static") && said.contains("elsewhere"),
        "{said}"
    );
    assert!(said.contains("python3"), "{said}");
    // Port 80 as user 10001: Docker lets any user bind it in a container;
    // no file capability, which would stop the binary under --cap-drop ALL.
    assert!(!dockerfile.contains("setcap"), "{dockerfile}");
    assert!(
        dockerfile.contains("ip_unprivileged_port_start=0"),
        "{dockerfile}"
    );

    std::fs::write(&config, "[server]\nlisten = [\"127.0.0.1:8080\"]\n").expect("write");
    for target in [&["dockerfile"][..], &["kubernetes", "--image", "my-app:1"]] {
        let mut args = target.to_vec();
        args.extend(["-c", config.to_str().expect("utf-8")]);
        let output = export(&args);
        assert_eq!(output.status.code(), Some(1), "{target:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("127.0.0.1:8080 is on loopback") && said.contains("0.0.0.0:PORT"),
            "{said}"
        );
        assert!(output.stdout.is_empty());
    }
}

/// The index of the first line starting with `prefix`.
fn line_of(dockerfile: &str, prefix: &str) -> usize {
    dockerfile
        .lines()
        .position(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{dockerfile}"))
}

#[test]
fn the_build_checks_the_config_as_wharfs_user_after_its_directories_are_made() {
    let dir = tempfile::tempdir().expect("temp dir");
    let site_dir = dir.path().join("site");
    std::fs::create_dir(&site_dir).expect("site");
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    std::fs::write(site_dir.join("cert.pem"), key.cert.pem()).expect("cert");
    std::fs::write(site_dir.join("key.pem"), key.signing_key.serialize_pem()).expect("key");
    let config = site_dir.join("wharf.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"0.0.0.0:8080\"]\nhttps = [\"0.0.0.0:8443\"]\n\
             [log]\naccess = \"{}\"\n\
             [tls]\nmode = \"files\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
            site_dir.join("logs/access.log").display()
        ),
    )
    .expect("write config");
    let config_arg = config.to_str().expect("utf-8");
    let output = export(&["dockerfile", "-c", config_arg]);
    let dockerfile = stdout(&output);

    // The log directory is made and owned after the copy, then the check
    // runs as the user wharf runs as.
    let copy = line_of(&dockerfile, "COPY [\".\"");
    let mkdir = line_of(&dockerfile, "RUN mkdir -p");
    let user = line_of(&dockerfile, "USER 10001:10001");
    let check = line_of(&dockerfile, "RUN [\"/usr/local/bin/wharf\", \"check\"");
    assert!(copy < mkdir && mkdir < user && user < check, "{dockerfile}");
    assert!(
        dockerfile.contains("&& chown -R 10001:10001"),
        "{dockerfile}"
    );
    // The log directory inside the context is listed for .dockerignore.
    assert!(
        dockerfile.contains("printf '%s\\n' Dockerfile .dockerignore logs > .dockerignore"),
        "{dockerfile}"
    );

    // A key readable only by root passes a check run as root, and fails the
    // check as wharf's user, as the build would.
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped the user part: switching to uid 10001 needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    for path in [dir.path(), site_dir.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    std::fs::set_permissions(
        site_dir.join("key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod key");
    let argv = exec_form(&dockerfile, "RUN [\"/usr/local/bin/wharf\", \"check\"");
    assert!(run_in_place(&argv).status.success(), "root reads the key");
    let as_wharf = Command::new("setpriv")
        .args(["--reuid=10001", "--regid=10001", "--clear-groups"])
        .arg(WHARF)
        .args(&argv[1..])
        .output()
        .expect("run setpriv");
    assert!(!as_wharf.status.success(), "{as_wharf:?}");
    let said = String::from_utf8_lossy(&as_wharf.stderr);
    assert!(
        said.contains("key.pem") && said.contains("ermission denied"),
        "{said}"
    );
}

#[test]
fn secrets_and_environment_the_container_must_be_given_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = site(dir.path(), 8080, 9180, "admin_token = \"${file:token}\"");
    let site_dir = config.parent().expect("dir");
    std::fs::write(site_dir.join("token"), "s3cret\n").expect("token");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        text.replace(
            "[app.web]\n",
            "[app.web]\nenv = { DATABASE_URL = \"${WHARF_TEST_DATABASE_URL}\" }\n",
        ),
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args([
            "export",
            "dockerfile",
            "-c",
            config.to_str().expect("utf-8"),
        ])
        .env("WHARF_TEST_DATABASE_URL", "postgres://db/app")
        .output()
        .expect("run wharf export");
    let dockerfile = stdout(&output);
    let said = String::from_utf8_lossy(&output.stderr);
    // The secret would be built into the image: keep it out, mount it.
    assert!(
        said.contains("token") && said.contains("is in the build context"),
        "{said}"
    );
    assert!(
        dockerfile.contains(".dockerignore token > .dockerignore"),
        "{dockerfile}"
    );
    // The variable was read here; the container must get it too.
    assert!(
        said.contains("${WHARF_TEST_DATABASE_URL}, which is set here"),
        "{said}"
    );
    // Neither exists while the image builds: no check then.
    assert!(
        !dockerfile.contains("\"check\""),
        "no build-time check: {dockerfile}"
    );
    assert!(dockerfile.contains("${file:...} secrets"), "{dockerfile}");
}

#[test]
fn state_this_machine_cannot_write_does_not_stop_the_export() {
    // The certificate storage is under a regular file: no user can make it
    // here, so `wharf check` fails on this machine. The image makes its own
    // (and its build runs the check there), so the export goes on.
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, "").expect("write");
    let storage = blocker.join("certificates");
    let config = site(
        dir.path(),
        8080,
        9180,
        &format!(
            "https = [\"0.0.0.0:8443\"]\n[tls]\nmode = \"acme\"\nemail = \"ops@example.com\"\nstorage = \"{}\"\n",
            storage.display()
        ),
    );
    let config_arg = config.to_str().expect("utf-8");
    let check = Command::new(WHARF)
        .args(["check", "-c", config_arg])
        .output()
        .expect("run wharf check");
    assert!(!check.status.success(), "{check:?}");
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("is not writable"),
        "{check:?}"
    );

    let dockerfile = stdout(&export(&["dockerfile", "-c", config_arg]));
    let volume = format!("VOLUME [\"{}\"]", storage.display());
    assert!(dockerfile.lines().any(|l| l == volume), "{dockerfile}");
    let mkdir = format!("RUN mkdir -p '{}'", storage.display());
    assert!(
        dockerfile.lines().any(|l| l.starts_with(&mkdir)),
        "{dockerfile}"
    );
    stdout(&export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
    ]));
}
