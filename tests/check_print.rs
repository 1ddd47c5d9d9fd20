//! `wharf check --print` writes a config that is itself a valid
//! wharf.toml meaning the same thing: every example in the docs, and a few
//! configs that use what the examples do not (apps with log files, `$`
//! in values, TLS from files, pools without passive ejection).

mod support;

use std::path::Path;
use std::process::Command;

use support::WHARF;

/// Runs `wharf check --print -c path`; the printed config, or the errors.
fn print(path: &Path) -> Result<String, String> {
    let output = Command::new(WHARF)
        .args(["check", "--print", "-c"])
        .arg(path)
        .env_remove("PORT")
        .output()
        .expect("run wharf check");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Checks `text`, prints it, checks the printed config and prints that
/// again: the second print must be the first, so nothing changed meaning
/// on the way.
fn assert_round_trips(dir: &Path, name: &str, text: &str) {
    let original = dir.join(format!("{name}.toml"));
    std::fs::write(&original, text).expect("write config");
    let printed =
        print(&original).unwrap_or_else(|errors| panic!("{name} is not valid:\n{errors}\n{text}"));
    let reprinted_path = dir.join(format!("{name}.printed.toml"));
    std::fs::write(&reprinted_path, &printed).expect("write printed config");
    let reprinted = print(&reprinted_path).unwrap_or_else(|errors| {
        panic!("the printed {name} is not a valid config:\n{errors}\n{printed}")
    });
    assert_eq!(
        printed, reprinted,
        "the printed {name} reads back differently"
    );
}

/// Every ```toml block of a docs page.
fn toml_blocks(page: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(page);
    let text = std::fs::read_to_string(&path).expect("read docs page");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match current.as_mut() {
            None if line.trim() == "```toml" => current = Some(String::new()),
            None => {}
            Some(_) if line.trim() == "```" => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// A certificate and key for `mode = "files"`, and as a CA for `directory_ca`.
fn write_certificate(dir: &Path) -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["example.com".to_string()]).expect("certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    (cert.display().to_string(), key.display().to_string())
}

/// Makes an example loadable here: the files and directories it names
/// exist in `dir`, and TLS state is kept in `dir`, not /var/lib/wharf.
fn loadable_here(example: &str, dir: &Path, cert: &str, key: &str) -> String {
    let secret = dir.join("db-password");
    std::fs::write(&secret, "s3cret\n").expect("write secret");
    std::fs::create_dir_all(dir.join("static")).expect("static dir");
    std::fs::create_dir_all(dir.join("dist/assets")).expect("assets dir");
    std::fs::create_dir_all(dir.join("errors")).expect("errors dir");
    std::fs::write(dir.join("errors/5xx.html"), "<h1>down</h1>").expect("error page");
    std::fs::copy(cert, dir.join("ca.pem")).expect("ca.pem");
    let mut text = example
        .replace("/run/secrets/db", &secret.display().to_string())
        .replace("/etc/ssl/example.com/fullchain.pem", cert)
        .replace("/etc/ssl/example.com/privkey.pem", key);
    if text.contains("[tls]") && !text.contains("storage =") {
        let storage = format!("[tls]\nstorage = \"{}\"", dir.join("storage").display());
        text = text.replace("[tls]", &storage);
    }
    // A `[tls]` fragment needs an HTTPS listener to be a whole config.
    if text.contains("[tls]") && !text.contains("[server]") {
        text = format!("[server]\nhttps = [\"127.0.0.1:8443\"]\n\n{text}");
    }
    text
}

#[test]
fn every_docs_example_prints_as_a_config_that_reads_back_the_same() {
    let mut count = 0;
    for page in ["config.md", "apps.md", "https.md"] {
        for (index, example) in toml_blocks(page).iter().enumerate() {
            let dir = tempfile::tempdir().expect("dir");
            let (cert, key) = write_certificate(dir.path());
            let text = loadable_here(example, dir.path(), &cert, &key);
            assert_round_trips(dir.path(), &format!("{page}-example-{index}"), &text);
            count += 1;
        }
    }
    assert!(count >= 10, "only {count} examples found in the docs");
}

#[test]
fn apps_dollars_tls_files_and_every_pool_option_print_as_a_valid_config() {
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = write_certificate(dir.path());
    std::fs::create_dir_all(dir.path().join("public")).expect("public dir");
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:8080"]
https = ["127.0.0.1:8443"]
admin = "off"
trusted_proxies = ["10.0.0.0/8", "192.168.1.10"]

[log]
format = "pretty"
access = "access.log"
level = "debug"

[tls]
mode = "files"
cert = "{cert}"
key = "{key}"
redirect_http = false
hsts = "max-age=31536000"

[[site]]
hosts = ["example.com", "*.example.com"]
  [[site.route]]
  path = "/price"
  respond = "costs $$5, or $${{PRICE}}"
  status = 402
  content_type = "text/html"
  [[site.route]]
  path = "/old/"
  redirect = "/new/"
  status = 301
  [[site.route]]
  path = "/files/"
  static = "public"
  spa = true
  [[site.route]]
  path = "/"
  upstream = "web"
  [site.cors]
  origins = ["https://app.example.com"]
  headers = ["content-type"]
  expose_headers = ["x-request-id"]
  credentials = true
  max_age = "1h 30m"

[[site]]
hosts = ["api.example.org"]
  [[site.route]]
  path = "/"
  upstream = "api"
  [site.cors]
  origins = ["*"]

[app.web]
command = ["sh", "-c", "exec python3 -m http.server \"$PORT\" # $${{PORT}}"]
instances = 2
port = 19001
env = {{ GREETING = "$$HOME is not expanded" }}
restart = "on-failure"
stop_signal = "INT"
memory_limit = "512MiB"
cpu_limit = 2
open_files = 4096
log = "logs/web.log"

[upstream.web]
app = "web"
balance = "least_conn"
[upstream.web.health]
path = "/"
expect = 204
[upstream.web.passive]
max_fails = 0

[upstream.api]
balance = "ip_hash"
servers = [
  {{ addr = "127.0.0.1:9001", weight = 3 }},
  "127.0.0.1:9002",
  {{ addr = "127.0.0.1:9003", backup = true }},
]
retries = 0
retry_budget = 1
[upstream.api.health]
expect = "200-399"
[upstream.api.breaker]
failures = 2
"#
    );
    assert_round_trips(dir.path(), "everything", &text);

    let printed = print(&dir.path().join("everything.toml")).expect("valid");
    assert!(printed.contains("costs $$5, or $${PRICE}"), "{printed}");
    let web = printed
        .split("[upstream.web]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or_default();
    assert!(
        !web.contains("servers"),
        "an app pool has no servers:\n{printed}"
    );
}
