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
    /// Environment variables the config file reads (`${NAME}`,
    /// `${NAME:-default}`), with whether it gives a default.
    pub env: Vec<(String, bool)>,
    /// Files the config reads with `${file:...}`: secrets, mounted when the
    /// container runs rather than built into the image.
    pub secret_files: Vec<PathBuf>,
}

/// Programs every Debian image has: an app that runs one of these by
/// name needs nothing installed.
const BASE_PROGRAMS: &[&str] = &["sh", "bash", "dash", "env", "sleep", "true", "false", "cat"];

/// Reads `config` (loaded from `config_file`, absolute) for a container.
/// Fails on what cannot work in one: a listener on loopback, which nothing
/// outside the container reaches, or on one address of this machine,
/// which the container does not have; port 0; a config in `/`, which
/// would make the whole file system the build context.
pub fn needs(config: &Config, config_file: &Path) -> Result<Needs, String> {
    let context = config_file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    if context.parent().is_none() {
        return Err(format!(
            "{} is in /, which would make the whole file system the image's build context; \
             move the config and what it serves into a directory of their own",
            config_file.display()
        ));
    }
    let mut ports = Vec::new();
    for (kind, addrs) in [
        ("http", &config.server.listen),
        ("https", &config.server.https),
    ] {
        for addr in addrs {
            let port = addr.port();
            let problem = if port == 0 {
                Some("has port 0, which a container cannot publish")
            } else if addr.ip().is_loopback() {
                Some("is on loopback, which nothing outside a container reaches")
            } else if !addr.ip().is_unspecified() {
                Some("is on one address of this machine, which a container does not have")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(format!(
                    "{}: the listener {addr} {problem}; listen on 0.0.0.0:PORT (or [::]:PORT) \
                     with a fixed port instead",
                    config.source
                ));
            }
            if ports.iter().any(|p: &Port| p.port == port) {
                continue;
            }
            let same_kind = ports.iter().filter(|p| p.name.starts_with(kind)).count();
            let name = match same_kind {
                0 => kind.to_string(),
                n => format!("{kind}-{}", n + 1),
            };
            ports.push(Port { name, port });
        }
    }
    if ports.is_empty() {
        return Err(format!(
            "{}: the config has no listener (server.listen and server.https are empty)",
            config.source
        ));
    }
    if let Some(admin) = config.server.admin {
        if !(admin.ip().is_unspecified() || admin.ip().is_loopback()) || admin.port() == 0 {
            return Err(format!(
                "{}: server.admin {admin} cannot be reached inside a container; use \
                 127.0.0.1:PORT (the health check runs inside it) or 0.0.0.0:PORT with a fixed port",
                config.source
            ));
        }
    }
    // An unspecified address, IPv6 included, also takes IPv4 connections
    // (wharf does not set IPV6_ONLY), and 127.0.0.1 works where IPv6 is
    // switched off.
    let ready_probe = config.server.admin.map(|addr| {
        if addr.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
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
        if let Some(program) = program_of(&app.command) {
            let path = app.dir.join(program);
            if !program.contains('/')
                || (Path::new(program).is_absolute() && !path.starts_with(&context))
            {
                // From PATH, or a system program (/usr/bin/python3): the
                // base image or its packages provide it, not the context.
                if !BASE_PROGRAMS.contains(&program) {
                    programs.push((name.clone(), program.to_string()));
                }
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
    let text = std::fs::read_to_string(config_file).unwrap_or_default();
    let (env, files) = references(&text);
    let secret_files = files
        .iter()
        .map(|file| normalized(&context.join(file)))
        .collect();
    Ok(Needs {
        env,
        secret_files,
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
    let real = normalized(path);
    (!real.starts_with(context)).then_some(real)
}

/// `path` with symbolic links and `..` followed; for a path that does not
/// exist (yet), `..` is resolved by the names alone.
fn normalized(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
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
    })
}

/// The program an app's command runs: the first word, or for `env` the
/// first word after its options and `NAME=value` assignments.
fn program_of(command: &[String]) -> Option<&str> {
    let first = command.first()?;
    if first != "env" && !first.ends_with("/env") {
        return Some(first);
    }
    command[1..]
        .iter()
        .map(String::as_str)
        .find(|word| !word.starts_with('-') && !word.contains('='))
        .or(Some(first))
}

/// The `${NAME}` / `${NAME:-default}` variables and `${file:...}` paths a
/// config file's text reads (comment lines skipped, `$$` is a literal `$`),
/// each once, in order.
fn references(text: &str) -> (Vec<(String, bool)>, Vec<String>) {
    let mut env: Vec<(String, bool)> = Vec::new();
    let mut files: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(at) = rest.find('$') {
            let after = &rest[at + 1..];
            if let Some(literal) = after.strip_prefix('$') {
                rest = literal;
                continue;
            }
            let Some(inner) = after.strip_prefix('{') else {
                rest = after;
                continue;
            };
            let Some(end) = inner.find('}') else {
                break;
            };
            let reference = &inner[..end];
            rest = &inner[end + 1..];
            if let Some(file) = reference.strip_prefix("file:") {
                if !files.iter().any(|f| f == file) {
                    files.push(file.to_string());
                }
                continue;
            }
            let (name, default) = match reference.split_once(":-") {
                Some((name, _)) => (name, true),
                None => (reference, false),
            };
            if !env.iter().any(|(n, _)| n == name) {
                env.push((name.to_string(), default));
            }
        }
    }
    (env, files)
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
mod tests;
