//! The embedded demo that `wharf run` serves when there is no config file:
//! a welcome page and an in-process echo backend behind a proxied route, so
//! a first run shows something useful and what a backend receives.

use std::net::SocketAddr;

/// The demo's config; `${WHARF_DEMO_ECHO}` is the echo backend's address.
pub const CONFIG: &str = r#"
[server]
listen = ["0.0.0.0:${PORT:-8080}"]

[log]
format = "pretty"

[[site]]
  [[site.route]]
  path = "/echo/"
  upstream = "demo_echo"

  [[site.route]]
  path = "/"
  respond = """
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>wharf is running</title>
<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;line-height:1.5;padding:0 1rem}code{background:#eee;padding:.1rem .3rem;border-radius:.2rem}</style>
</head>
<body>
<h1>wharf is running</h1>
<p>This is the embedded demo: no <code>wharf.toml</code> was found.</p>
<ul>
<li><a href="/echo/hello?name=wharf">/echo/</a> is proxied to a built-in echo backend that answers with what it received: method, path, headers (see <code>X-Forwarded-For</code>, <code>X-Real-IP</code>, <code>X-Forwarded-Proto</code>).</li>
<li>Write a <code>wharf.toml</code> (see docs/config.md), check it with <code>wharf check</code>, run it with <code>wharf run</code>, and reload it with <code>wharf reload</code> or SIGHUP.</li>
</ul>
</body>
</html>
"""
  content_type = "text/html; charset=utf-8"

[upstream.demo_echo]
servers = ["${WHARF_DEMO_ECHO}"]
"#;

/// Starts the echo backend on a free loopback port, in this process.
pub async fn start_echo() -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = crate::echo::serve(listener).await {
            tracing::error!(error = %error, "demo echo backend stopped");
        }
    });
    Ok(addr)
}
