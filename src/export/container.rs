//! What a config needs from a container, for `wharf export dockerfile`
//! and `wharf export kubernetes`: the ports to publish, how to ask wharf
//! whether it is ready, how long a stop may take, which directories wharf
//! writes to, and which of its files would not be in the image.
//!
//! The image holds the config file's directory (the build context) at the
//! same absolute path as on the machine the export runs on, so every path
//! in the config, relative or absolute, means the same file inside the
//! image. What lies outside that directory is listed, not guessed at.

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::config::{AccessLog, Action, AppLog, Config, TlsMode};

/// Headroom on top of the drain and the app stop timeouts, as in the
/// systemd unit.
pub const STOP_MARGIN: Duration = Duration::from_secs(5);

/// The user wharf runs as inside the image.
pub const USER: &str = "wharf";
pub const UID: u32 = 10001;

/// Where the wharf binary is in the image.
pub const BINARY: &str = "/usr/local/bin/wharf";

/// A port a listener serves on, to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// `http` or `https` (a Kubernetes port name; the second of a kind
    /// gets a number).
    pub name: String,
    pub port: u16,
}

/// A file or directory the config uses that is not under the build
/// context, so the image would not have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// The config key that names it.
    pub key: String,
    pub path: PathBuf,
}

/// Everything the generators read from the config.
#[derive(Debug, Clone)]
pub struct Needs {
    /// The config file's directory: the build context, and its path in
    /// the image.
    pub context: PathBuf,
    /// The config file, absolute (in the image as well).
    pub config: PathBuf,
    pub ports: Vec<Port>,
    /// Where `wharf status --ready` asks, when the admin API is on.
    pub ready_probe: Option<SocketAddr>,
    /// SIGTERM to SIGKILL: the drain, the longest app stop and a margin.
    pub stop: Duration,
    /// How long apps may take to come up (the longest `start_timeout`;
    /// none without apps).
    pub start: Option<Duration>,
    /// Directories wharf writes to at run time: the certificate storage
    /// and the parents of log files.
    pub writable: Vec<PathBuf>,
    /// Whether certificates are made at run time (ACME or the local CA)
    /// and kept in `tls.storage`.
    pub keeps_certificates: Option<PathBuf>,
    pub acme: bool,
    /// A listener on a port below 1024.
    pub low_ports: bool,
    /// Programs apps run by name from PATH (`python3`, `node`) or by an
    /// absolute path outside the context (`/usr/bin/node`): the image must
    /// install them.
    pub programs: Vec<(String, String)>,
    pub outside: Vec<Outside>,
}

/// Reads `config` (loaded from `config_file`, absolute) for a container.
/// Fails on what cannot work in one: a listener only on loopback, which
/// nothing outside the container reaches.
pub fn needs(config: &Config, config_file: &Path) -> Result<Needs, String> {
    let context = config_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut ports = Vec::new();
    for (kind, addrs) in [
        ("http", &config.server.listen),
        ("https", &config.server.https),
    ] {
        for addr in addrs {
            if addr.ip().is_loopback() {
                return Err(format!(
                    "{}: the listener {addr} is on loopback, which nothing outside a container \
                     reaches; listen on 0.0.0.0:{} (or [::]:{}) instead",
                    config.source,
                    addr.port(),
                    addr.port()
                ));
            }
            if ports.iter().any(|p: &Port| p.port == addr.port()) {
                continue;
            }
            let same_kind = ports.iter().filter(|p| p.name.starts_with(kind)).count();
            let name = match same_kind {
                0 => kind.to_string(),
                n => format!("{kind}-{}", n + 1),
            };
            ports.push(Port {
                name,
                port: addr.port(),
            });
        }
    }
    if ports.is_empty() {
        return Err(format!(
            "{}: the config has no listener (server.listen and server.https are empty)",
            config.source
        ));
    }
    let ready_probe = config.server.admin.map(|addr| {
        if addr.ip().is_unspecified() {
            let loopback = match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            };
            SocketAddr::new(loopback, addr.port())
        } else {
            addr
        }
    });
    let app_stop = config
        .apps
        .values()
        .map(|app| app.stop_timeout)
        .max()
        .unwrap_or_default();
    let start = config.apps.values().map(|app| app.start_timeout).max();

    let mut writable = Vec::new();
    let keeps_certificates = matches!(config.tls.mode, TlsMode::Acme | TlsMode::Internal)
        .then(|| config.tls.storage.clone());
    writable.extend(keeps_certificates.clone());
    if let AccessLog::File(path) = &config.log.access {
        writable.extend(path.parent().map(Path::to_path_buf));
    }
    let mut outside = Vec::new();
    let mut programs = Vec::new();
    for (name, app) in &config.apps {
        if let AppLog::File(path) = &app.log {
            writable.extend(path.parent().map(Path::to_path_buf));
        }
        if let Some(path) = outside_of(&context, &app.dir) {
            outside.push(Outside {
                key: format!("app.{name}.dir"),
                path,
            });
        }
        if let Some(program) = app.command.first() {
            let path = app.dir.join(program);
            if !program.contains('/')
                || (Path::new(program).is_absolute() && !path.starts_with(&context))
            {
                // From PATH, or a system program (/usr/bin/python3): the
                // base image or its packages provide it, not the context.
                programs.push((name.clone(), program.clone()));
            } else if let Some(path) = outside_of(&context, &path) {
                outside.push(Outside {
                    key: format!("app.{name}.command"),
                    path,
                });
            }
        }
    }
    for (index, site) in config.sites.iter().enumerate() {
        for (route, entry) in site.routes.iter().enumerate() {
            if let Action::Static { root, .. } = &entry.action {
                if let Some(path) = outside_of(&context, root) {
                    outside.push(Outside {
                        key: format!("site[{index}].route[{route}].static"),
                        path,
                    });
                }
            }
        }
    }
    for (key, file) in [
        ("tls.cert", &config.tls.cert),
        ("tls.key", &config.tls.key),
        ("tls.directory_ca", &config.tls.directory_ca),
    ] {
        if let Some(path) = file.as_ref().and_then(|path| outside_of(&context, path)) {
            outside.push(Outside {
                key: key.to_string(),
                path,
            });
        }
    }
    writable.sort();
    writable.dedup();
    Ok(Needs {
        config: config_file.to_path_buf(),
        context,
        low_ports: ports.iter().any(|p| p.port < 1024),
        ports,
        ready_probe,
        stop: config.server.shutdown_timeout + app_stop + STOP_MARGIN,
        start,
        writable,
        keeps_certificates,
        acme: config.tls.mode == TlsMode::Acme,
        programs,
        outside,
    })
}

/// `path` as it really is (symbolic links and `..` followed), when that
/// is not under `context`.
fn outside_of(context: &Path, path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| {
        // Not there (yet): resolve `..` by the names alone.
        let mut lexical = PathBuf::new();
        for component in path.components() {
            match component {
                Component::ParentDir => {
                    lexical.pop();
                }
                Component::CurDir => {}
                other => lexical.push(other),
            }
        }
        lexical
    });
    (!real.starts_with(context)).then_some(real)
}

/// Whole seconds, rounded up.
pub fn seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// The health check command, as an exec argv.
pub fn ready_command(probe: SocketAddr) -> [String; 5] {
    [
        BINARY.to_string(),
        "status".to_string(),
        "--ready".to_string(),
        "--admin".to_string(),
        probe.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, dir: &Path) -> Config {
        let env = |_: &str| None;
        crate::config::parse(text, "wharf.toml", dir, &env).expect("valid config")
    }

    #[test]
    fn ports_are_named_by_kind_and_loopback_listeners_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("wharf.toml");
        let config = parse(
            "[server]\nlisten = [\"0.0.0.0:8080\", \"[::]:8080\", \"0.0.0.0:8081\"]\n\
             https = [\"0.0.0.0:8443\"]\nadmin = \"0.0.0.0:9180\"\n\
             [tls]\nmode = \"internal\"\nstorage = \"/var/lib/wharf\"\n",
            dir.path(),
        );
        let needs = needs(&config, &file).expect("needs");
        let ports: Vec<(&str, u16)> = needs
            .ports
            .iter()
            .map(|p| (p.name.as_str(), p.port))
            .collect();
        assert_eq!(
            ports,
            [("http", 8080), ("http-2", 8081), ("https", 8443)],
            "one port per number, named by kind"
        );
        assert_eq!(
            needs.ready_probe,
            Some("127.0.0.1:9180".parse().expect("addr"))
        );
        assert!(!needs.low_ports);
        assert_eq!(needs.writable, [PathBuf::from("/var/lib/wharf")]);

        let config = parse("[server]\nlisten = [\"127.0.0.1:8080\"]\n", dir.path());
        let error = super::needs(&config, &file).expect_err("loopback listener");
        assert!(
            error.contains("127.0.0.1:8080") && error.contains("0.0.0.0:8080"),
            "{error}"
        );
    }

    #[test]
    fn files_outside_the_config_directory_are_listed() {
        let outer = tempfile::tempdir().expect("temp dir");
        let context = outer.path().join("site");
        std::fs::create_dir_all(context.join("public")).expect("public");
        std::fs::create_dir_all(outer.path().join("elsewhere")).expect("elsewhere");
        let file = context.join("wharf.toml");
        let config = parse(
            "[server]\nlisten = [\"0.0.0.0:80\"]\nadmin = \"off\"\n\
             [[site]]\n[[site.route]]\npath = \"/a/\"\nstatic = \"public\"\n\
             [[site.route]]\npath = \"/b/\"\nstatic = \"../elsewhere\"\n\
             [app.web]\ncommand = [\"./server\"]\nport = 9000\n\
             [app.py]\ncommand = [\"python3\", \"app.py\"]\nport = 9100\n\
             [app.node]\ncommand = [\"/usr/bin/node\", \"app.js\"]\nport = 9200\n\
             [app.up]\ncommand = [\"../bin/up\"]\nport = 9300\n",
            &context,
        );
        let needs = needs(&config, &file).expect("needs");
        let keys: Vec<&str> = needs.outside.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            ["app.up.command", "site[0].route[1].static"],
            "{:?}",
            needs.outside
        );
        let programs: Vec<(&str, &str)> = needs
            .programs
            .iter()
            .map(|(app, program)| (app.as_str(), program.as_str()))
            .collect();
        assert_eq!(programs, [("node", "/usr/bin/node"), ("py", "python3")]);
        assert!(needs.low_ports);
        assert_eq!(needs.ready_probe, None);
        assert_eq!(needs.stop, Duration::from_secs(30 + 10 + 5));
    }
}
