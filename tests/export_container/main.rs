//! `wharf export dockerfile` and `wharf export kubernetes`: the Dockerfile
//! passes hadolint, the manifests pass Kubernetes' own schemas
//! (kubernetes-validate, strict), and the commands they run work: the
//! build-time `wharf check`, and the health check and readiness probe
//! against a running wharf. `scripts/test` installs both tools (PyPI)
//! into target/test-tools.
//!
//! The Dockerfile's own lines are in `dockerfile.rs`, the manifests in
//! `kubernetes.rs`, the health check and readiness probe they share in
//! `probes.rs`; the helpers here.

#[path = "../support/mod.rs"]
mod support;

mod dockerfile;
mod kubernetes;
mod probes;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::WHARF;

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
