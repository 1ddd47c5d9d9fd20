//! The embedded demo that `wharf run` serves when there is no config file:
//! a welcome page, and two supervised `wharf echo` instances behind a
//! least_conn upstream on `/echo/`, so a first run shows something useful
//! and what a backend receives.

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

[app.demo_echo]
command = ["${WHARF_EXE}", "echo"]
instances = 2
port = "${WHARF_DEMO_PORT}"
backoff = "500ms"

[upstream.demo_echo]
app = "demo_echo"
balance = "least_conn"
"#;

/// The demo's admin address (`server.admin`), for `wharf status`,
/// `reload` and `deploy` run where there is no wharf.toml. Read from the
/// demo config itself, so the two cannot drift apart; the placeholders
/// stand in for the values `vars` finds at start.
pub fn admin() -> Result<Option<std::net::SocketAddr>, crate::config::ConfigErrors> {
    let lookup = |key: &str| match key {
        "WHARF_EXE" => Some("wharf".to_string()),
        "WHARF_DEMO_PORT" => Some("9001".to_string()),
        _ => None,
    };
    let config = crate::config::parse(
        CONFIG,
        "<embedded demo>",
        std::path::Path::new("."),
        &lookup,
    )?;
    Ok(config.server.admin)
}

/// The variables the demo config needs: this executable, and the first of
/// four free consecutive loopback ports (two instances plus deploy spares).
pub fn vars() -> std::io::Result<Vec<(String, String)>> {
    let exe = std::env::current_exe()?;
    let mut base = 9001u16;
    for _ in 0..200 {
        let free = (0..4).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if free {
            return Ok(vec![
                ("WHARF_EXE".to_string(), exe.display().to_string()),
                ("WHARF_DEMO_PORT".to_string(), base.to_string()),
            ]);
        }
        base += 4;
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no four free consecutive ports between 9001 and 9801 for the demo's echo instances",
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_serves_its_admin_api_on_the_default_address() {
        let admin = super::admin().expect("the demo config loads");
        assert_eq!(admin, Some("127.0.0.1:9180".parse().expect("addr")));
    }
}
