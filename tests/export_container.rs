//! `wharf export dockerfile` and `wharf export kubernetes`: the Dockerfile
//! passes hadolint, the manifests pass Kubernetes' own schemas
//! (kubernetes-validate, strict), and the commands they run work: the
//! build-time `wharf check`, and the health check and readiness probe
//! against a running wharf. `scripts/test` installs both tools (PyPI)
//! into target/test-tools.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::{free_ports, Wharf, WHARF};

/// Where scripts/test installs hadolint, kubernetes-validate and a
/// Python with PyYAML.
fn tool(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-tools/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test, which installs it",
        path.display()
    );
    path
}

fn export(args: &[&str]) -> Output {
    Command::new(WHARF)
        .arg("export")
        .args(args)
        .output()
        .expect("run wharf export")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Runs an exec-form command from the generated files with this build's
/// wharf in place of the image's.
fn run_in_place(argv: &[String]) -> Output {
    assert_eq!(argv[0], "/usr/local/bin/wharf", "{argv:?}");
    Command::new(WHARF)
        .args(&argv[1..])
        .output()
        .expect("run the command")
}

/// The exec-form argv of the Dockerfile instruction line starting with
/// `prefix` (e.g. `RUN [`, `  CMD [`).
fn exec_form(dockerfile: &str, prefix: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{dockerfile}"));
    let json = &line[line.find('[').expect("exec form")..];
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// The YAML documents, read by PyYAML.
fn yaml_documents(text: &str, dir: &Path) -> Vec<Value> {
    let path = dir.join("manifests.yaml");
    std::fs::write(&path, text).expect("write manifests");
    let output = Command::new(tool("python3"))
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        ])
        .arg(&path)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "not YAML: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json")
}

/// kubernetes-validate --strict on the manifests: unknown fields and
/// wrong types fail.
fn validate(text: &str, dir: &Path) {
    let path = dir.join("validate.yaml");
    std::fs::write(&path, text).expect("write manifests");
    let output = Command::new(tool("kubernetes-validate"))
        .args(["--strict", "--quiet"])
        .arg(&path)
        .output()
        .expect("run kubernetes-validate");
    assert!(
        output.status.success(),
        "kubernetes-validate refused:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {documents:?}"))
}

/// A site with an app and static files, listening on every address on
/// `port`, with its admin API on loopback `admin`.
fn site(dir: &Path, port: u16, admin: u16, tls: &str) -> PathBuf {
    let site = dir.join("my site");
    std::fs::create_dir_all(site.join("public")).expect("public");
    std::fs::write(site.join("public/index.html"), "hi\n").expect("index");
    std::fs::write(site.join("server"), "#!/bin/sh\nexec sleep 100\n").expect("server");
    let config = site.join("wharf.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"0.0.0.0:{port}\"]\nadmin = \"127.0.0.1:{admin}\"\n\
             shutdown_timeout = \"20s\"\n{tls}\n\
             [[site]]\n  [[site.route]]\n  path = \"/static/\"\n  static = \"public\"\n\
               [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n\
             [upstream.web]\napp = \"web\"\n\
             [app.web]\ncommand = [\"./server\"]\nport = 9300\ninstances = 2\n\
             memory_limit = \"256Mi\"\nstop_timeout = \"15s\"\nstart_timeout = \"40s\"\n"
        ),
    )
    .expect("write config");
    std::fs::canonicalize(config).expect("canonical")
}

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

#[test]
fn the_health_check_and_the_readiness_probe_ask_the_running_wharf() {
    let dir = tempfile::tempdir().expect("temp dir");
    let admin = free_ports(1);
    let config = site(dir.path(), 8080, admin, "");
    let config_arg = config.to_str().expect("utf-8");
    let dockerfile = stdout(&export(&["dockerfile", "-c", config_arg]));
    let health = exec_form(&dockerfile, "  CMD [");
    let manifests = stdout(&export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
    ]));
    let documents = yaml_documents(&manifests, dir.path());
    let container = &kind(&documents, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let probe: Vec<String> =
        serde_json::from_value(container["readinessProbe"]["exec"]["command"].clone())
            .expect("exec probe");
    assert_eq!(health, probe, "the same question in both");
    assert_eq!(
        health[1..],
        [
            "status",
            "--ready",
            "--admin",
            &format!("127.0.0.1:{admin}")
        ]
    );

    // A wharf serving on loopback, with the admin API the config names.
    let running = tempfile::tempdir().expect("temp dir");
    let mut wharf = Wharf::start_with_config(
        running,
        &format!("[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"127.0.0.1:{admin}\"\n[log]\nformat = \"json\"\n"),
    );
    for argv in [&health, &probe] {
        let asked = run_in_place(argv);
        assert!(asked.status.success(), "{asked:?}");
        assert_eq!(String::from_utf8_lossy(&asked.stdout), "ready\n");
    }
    let _ = wharf.child.kill();
    let _ = wharf.child.wait();
    let asked = run_in_place(&health);
    assert_eq!(asked.status.code(), Some(1), "{asked:?}");
    let said = String::from_utf8_lossy(&asked.stderr);
    assert!(said.contains("cannot reach the admin API"), "{said}");
}

#[test]
fn the_manifests_pass_kubernetes_schemas_and_drain_on_every_rollout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = site(dir.path(), 8080, 9180, "");
    let manifests = stdout(&export(&[
        "kubernetes",
        "-c",
        config.to_str().expect("utf-8"),
        "--image",
        "registry.example.com/my-app:1.0",
        "--name",
        "my-app",
        "--namespace",
        "shop",
        "--replicas",
        "3",
    ]));
    validate(&manifests, dir.path());
    let documents = yaml_documents(&manifests, dir.path());
    let kinds: Vec<&str> = documents
        .iter()
        .filter_map(|d| d["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["Deployment", "Service", "PodDisruptionBudget"]);
    assert!(documents
        .iter()
        .all(|d| d["metadata"]["namespace"] == "shop"));

    let deployment = &kind(&documents, "Deployment")["spec"];
    assert_eq!(deployment["replicas"], 3);
    assert_eq!(deployment["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pod = &deployment["template"]["spec"];
    // preStop 5s + shutdown_timeout 20s + the app's stop_timeout 15s + 5s.
    assert_eq!(pod["terminationGracePeriodSeconds"], 45);
    assert_eq!(pod["securityContext"]["runAsUser"], 10001);
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example.com/my-app:1.0");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    // Two instances of 256 MiB and 128 MiB for wharf.
    assert_eq!(container["resources"]["limits"]["memory"], "640Mi");
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    let service = &kind(&documents, "Service")["spec"];
    assert_eq!(service["type"], "ClusterIP");
    assert_eq!(service["ports"][0]["port"], 80);
    assert_eq!(service["ports"][0]["targetPort"], "http");
}

#[test]
fn certificates_wharf_orders_live_on_a_volume_of_one_pod() {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = dir.path().join("certificates");
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
    let manifests = stdout(&export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
    ]));
    validate(&manifests, dir.path());
    let documents = yaml_documents(&manifests, dir.path());
    let deployment = &kind(&documents, "Deployment")["spec"];
    assert_eq!(deployment["strategy"]["type"], "Recreate");
    let pod = &deployment["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["volumeMounts"][0]["mountPath"],
        storage.to_str().expect("utf-8")
    );
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "wharf"
    );
    kind(&documents, "PersistentVolumeClaim");
    // wharf terminates TLS: it is the edge.
    let service = &kind(&documents, "Service")["spec"];
    assert_eq!(service["type"], "LoadBalancer");
    assert_eq!(service["ports"][1]["port"], 443);

    let dockerfile = stdout(&export(&["dockerfile", "-c", config_arg]));
    let volume = format!("VOLUME [\"{}\"]", storage.display());
    assert!(dockerfile.lines().any(|l| l == volume), "{dockerfile}");
    assert!(dockerfile.contains("EXPOSE 8080 8443"), "{dockerfile}");

    let output = export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
        "--replicas",
        "2",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("--replicas 1"), "{said}");
    for (flag, value) in [("--name", "My_App"), ("--service-type", "Ingress")] {
        let output = export(&[
            "kubernetes",
            "-c",
            config_arg,
            "--image",
            "my-app:1",
            flag,
            value,
        ]);
        assert_eq!(output.status.code(), Some(1), "{flag} {value}");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains(value), "{said}");
    }
}

#[tokio::test]
async fn a_health_check_that_gets_no_answer_fails_within_its_timeout() {
    // An admin address whose connect hangs, as behind a dropping firewall.
    let hanging = support::unanswered().await;
    let addr = hanging.addr.to_string();
    let started = std::time::Instant::now();
    let asked = tokio::task::spawn_blocking(move || {
        Command::new(WHARF)
            .args(["status", "--ready", "--admin", &addr])
            .output()
            .expect("run wharf status --ready")
    })
    .await
    .expect("join");
    assert_eq!(asked.status.code(), Some(1), "{asked:?}");
    let said = String::from_utf8_lossy(&asked.stderr);
    assert!(said.contains("did not answer within 3s"), "{said}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn without_an_admin_api_readiness_is_a_connect_and_port_80_keeps_its_capability() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = site(dir.path(), 80, 9180, "");
    let text = std::fs::read_to_string(&config).expect("read");
    std::fs::write(
        &config,
        text.replace("admin = \"127.0.0.1:9180\"", "admin = \"off\""),
    )
    .expect("write");
    let config_arg = config.to_str().expect("utf-8");
    let manifests = stdout(&export(&[
        "kubernetes",
        "-c",
        config_arg,
        "--image",
        "my-app:1",
    ]));
    validate(&manifests, dir.path());
    let documents = yaml_documents(&manifests, dir.path());
    let container = &kind(&documents, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], "http");
    assert!(container["readinessProbe"]["exec"].is_null(), "{container}");
    let security = &container["securityContext"];
    assert_eq!(security["capabilities"]["add"][0], "NET_BIND_SERVICE");
    // File capabilities work only where privilege escalation is allowed.
    assert!(security["allowPrivilegeEscalation"].is_null(), "{security}");

    let dockerfile = stdout(&export(&["dockerfile", "-c", config_arg]));
    assert!(
        !dockerfile.lines().any(|l| l.starts_with("HEALTHCHECK")),
        "{dockerfile}"
    );
    assert!(
        dockerfile.contains("server.admin is \"off\""),
        "{dockerfile}"
    );
}
