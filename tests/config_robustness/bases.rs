//! Valid configs, from docs/config.md's examples: the bases every
//! mutated case starts from.

use super::*;

const SERVER_AND_LOG: &str = r#"[server]
listen = ["127.0.0.1:${PORT:-8080}"]
admin = "127.0.0.1:9180"
trusted_proxies = ["10.0.0.0/8", "192.168.1.10", "fd00::/8"]
shutdown_timeout = "30s"
header_timeout = "10s"
idle_timeout = "1m 30s"
max_header_size = "64KiB"
max_body_size = 10485760

[log]
format = "json"
access = "off"
level = "info"
"#;

const PROXY: &str = r#"
[[site]]
hosts = ["example.com", "*.example.com"]
  [[site.route]]
  path = "/"
  upstream = "app"

[upstream.app]
balance = "least_conn"
servers = [
  { addr = "127.0.0.1:9001", weight = 3 },
  "127.0.0.1:9002",
  { addr = "127.0.0.1:9003", backup = true },
]
connect_timeout = "2s"
response_timeout = "60s"
retries = 2
retry_backoff = "100ms"
retry_backoff_max = "2s"
retry_budget = 0.2

[upstream.app.health]
path = "/health"
interval = "2s"
timeout = "1s"
fails = 3
passes = 2
expect = "2xx"

[upstream.app.passive]
max_fails = 5
window = "10s"
eject_for = "30s"
max_ejected_percent = 50

[upstream.app.breaker]
failures = 5
open_for = "10s"

[upstream.other]
balance = "ip_hash"
servers = ["[::1]:9004"]
[upstream.other.health]
expect = 204
"#;

const STATIC_CORS: &str = r#"
[[site]]
hosts = ["example.com"]
  [[site.route]]
  path = "/static/"
  static = "./static"
  spa = false
  [[site.route]]
  path = "/"
  static = "static"
  spa = true
  [site.cors]
  origins = ["https://app.example.com", "http://[::1]:3000"]
  methods = ["GET", "POST"]
  headers = ["content-type", "authorization"]
  expose_headers = ["x-request-id"]
  credentials = true
  max_age = "1h"
"#;

const REDIRECT_RESPOND: &str = r#"
[[site]]
hosts = ["status.example.com"]
  [[site.route]]
  path = "/health"
  respond = "ok"
  [[site.route]]
  path = "/price"
  respond = "costs $$5"
  status = 200
  content_type = "text/html; charset=utf-8"
  [[site.route]]
  path = "/old/"
  redirect = "https://example.com/new/"
  status = 308
  [[site.route]]
  path = "/"
  redirect = "/health"
  status = 302

[[site]]
  [[site.route]]
  path = "/"
  respond = "${WHARF_FUZZ_BODY:-fallback}"
  status = 404
"#;

const APPS: &str = r#"
[app.web]
command = ["sleep", "60"]
dir = "."
instances = 3
port = 9001
env = { MODE = "release", SECRET = "${file:secret}" }
restart = "always"
backoff = "1s"
max_backoff = "60s"
stop_signal = "TERM"
stop_timeout = "10s"
memory_limit = "512MiB"
cpu_limit = 0.5
open_files = 65536
log = "stdout"
start_timeout = "60s"

[upstream.web]
app = "web"

[[site]]
  [[site.route]]
  path = "/"
  upstream = "web"
"#;

/// Storage paths are relative: each worker checks in its own directory.
fn tls_internal() -> String {
    "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\n\
     [tls]\nmode = \"internal\"\nstorage = \"internal\"\nredirect_http = true\n\
     hsts = \"max-age=31536000; includeSubDomains\"\n\n\
     [[site]]\nhosts = [\"example.com\"]\n  [[site.route]]\n  path = \"/\"\n  respond = \"hi\"\n"
        .to_string()
}

fn tls_files() -> String {
    "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\n\
     [tls]\nmode = \"files\"\ncert = \"site.pem\"\nkey = \"site.key\"\nredirect_http = false\n\n\
     [[site]]\nhosts = [\"a.test\"]\n  [[site.route]]\n  path = \"/\"\n  respond = \"hi\"\n"
        .to_string()
}

fn tls_acme() -> String {
    "[server]\nlisten = [\"127.0.0.1:8080\"]\nhttps = [\"127.0.0.1:8443\"]\n\n\
     [tls]\nmode = \"acme\"\nemail = \"ops@example.com\"\n\
     directory = \"https://127.0.0.1:14000/dir\"\nchallenge = \"tls-alpn-01\"\n\
     renew_before = \"20d\"\nstorage = \"acme\"\nhsts = \"max-age=600\"\n\n\
     [[site]]\nhosts = [\"example.com\", \"www.example.com\"]\n  [[site.route]]\n  path = \"/\"\n  respond = \"hi\"\n"
        .to_string()
}

/// The valid configs every mutation starts from, with the files they
/// name created in `dir`.
pub(crate) fn bases(dir: &Path) -> Vec<(&'static str, String)> {
    std::fs::create_dir_all(dir.join("static")).expect("static dir");
    std::fs::write(dir.join("static/index.html"), "<h1>hi</h1>").expect("index");
    std::fs::write(dir.join("secret"), "s3cret\n").expect("secret");
    let pair = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).expect("cert");
    std::fs::write(dir.join("site.pem"), pair.cert.pem()).expect("cert");
    std::fs::write(dir.join("site.key"), pair.signing_key.serialize_pem()).expect("key");
    vec![
        ("proxy", format!("{SERVER_AND_LOG}{PROXY}")),
        ("static + cors", format!("{SERVER_AND_LOG}{STATIC_CORS}")),
        (
            "redirect + respond",
            format!("{SERVER_AND_LOG}{REDIRECT_RESPOND}"),
        ),
        ("apps", format!("{SERVER_AND_LOG}{APPS}")),
        ("tls internal", tls_internal()),
        ("tls files", tls_files()),
        ("tls acme", tls_acme()),
        ("no [server]", format!("{REDIRECT_RESPOND}{PROXY}")),
        (
            "everything",
            format!("{SERVER_AND_LOG}{PROXY}{APPS}").replace(
                "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n",
                "",
            ),
        ),
    ]
}
