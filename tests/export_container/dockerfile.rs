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
    // Port 80 as user 10001: the binary carries the capability.
    assert!(
        dockerfile.contains("RUN setcap cap_net_bind_service=+ep /usr/local/bin/wharf"),
        "{dockerfile}"
    );
    assert!(dockerfile.contains("libcap2-bin"), "{dockerfile}");

    std::fs::write(&config, "[server]\nlisten = [\"127.0.0.1:8080\"]\n").expect("write");
    for target in [&["dockerfile"][..], &["kubernetes", "--image", "my-app:1"]] {
        let mut args = target.to_vec();
        args.extend(["-c", config.to_str().expect("utf-8")]);
        let output = export(&args);
        assert_eq!(output.status.code(), Some(1), "{target:?}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("127.0.0.1:8080 is on loopback") && said.contains("0.0.0.0:8080"),
            "{said}"
        );
        assert!(output.stdout.is_empty());
    }
}
