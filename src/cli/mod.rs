//! Command-line interface: one file per subcommand. The only place that
//! uses `anyhow`; everything below returns typed errors.

mod admin_client;
mod check;
mod demo;
mod deploy;
mod doctor;
mod echo;
mod export;
mod hash_password;
mod reload;
mod run;
mod status;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// wharf puts a web app on a server: reverse proxy, static files, CORS,
/// access logs and hot reloads in one binary.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve with a config file; without one, run the embedded demo.
    ///
    /// Example:
    ///   wharf run                     # ./wharf.toml, or the demo if it is missing
    ///   wharf run -c /etc/wharf.toml
    ///   PORT=3000 wharf run           # the demo on port 3000
    ///
    /// SIGHUP reloads the config; SIGTERM or SIGINT stops after in-flight
    /// requests finish (up to server.shutdown_timeout).
    #[command(verbatim_doc_comment)]
    Run {
        /// Config file [default: wharf.toml, or the demo when it does not exist].
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Check a config file and exit 0 if it is valid (like `nginx -t`).
    ///
    /// Example:
    ///   wharf check -c wharf.toml
    ///   wharf check --print           # show the effective config, secrets redacted
    #[command(verbatim_doc_comment)]
    Check {
        /// Config file.
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
        /// Print the effective config (defaults filled in, ${file:...} values redacted).
        #[arg(long)]
        print: bool,
    },
    /// Check that a config can work on this machine, and say what to do
    /// when it cannot: listeners that cannot be bound (and who holds
    /// them), upstream servers that refuse connections or fail their
    /// health check, apps that cannot start or whose ports are taken,
    /// static directories, certificates, the open-file limit.
    ///
    /// Example:
    ///   wharf doctor                  # ./wharf.toml
    ///   wharf doctor -c /etc/wharf/wharf.toml
    ///
    /// Prints one line per check (ok, warn or FAIL, with the fix) and
    /// exits 1 when any check failed. Ports held by the wharf already
    /// serving this config are reported as served, not as conflicts.
    #[command(verbatim_doc_comment)]
    Doctor {
        /// Config file.
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
    },
    /// Run a tiny backend that answers every request with what it received,
    /// as JSON. Useful to see what reaches your app through wharf.
    ///
    /// Example:
    ///   wharf echo --port 9001
    ///   PORT=9001 wharf echo
    ///   curl 'localhost:9001/x?sleep=500&status=201'
    #[command(verbatim_doc_comment)]
    Echo {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, env = "PORT", default_value_t = 9001)]
        port: u16,
        /// Address to bind instead of 127.0.0.1.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
    },
    /// Replace an app's instances one at a time with no failed request:
    /// start a new one, wait until healthy, add it, drain and stop an old one.
    ///
    /// Example:
    ///   wharf deploy web              # after installing a new ./server binary
    ///   wharf deploy web --admin 127.0.0.1:9180
    ///
    /// Exits non-zero, with the old instances still serving, when a new
    /// instance does not become healthy within app.NAME.start_timeout.
    #[command(verbatim_doc_comment)]
    Deploy {
        /// The app, as named in [app.NAME].
        app: String,
        /// Config file to read server.admin from [default: wharf.toml; without
        /// it, the embedded demo's admin address].
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Admin address, overriding the config.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
    },
    /// Show what a running wharf is doing: upstream servers and their
    /// health, app instances, certificates, traffic (from the admin API).
    ///
    /// Example:
    ///   wharf status                  # admin address (and token) from ./wharf.toml
    ///   wharf status --admin 127.0.0.1:9180 --json
    ///   WHARF_ADMIN_TOKEN=... wharf status -c /etc/wharf.toml
    ///   wharf status --ready --admin 127.0.0.1:9180   # a container health check
    #[command(verbatim_doc_comment)]
    Status {
        /// Config file to read server.admin and admin_token from [default:
        /// wharf.toml; without it, the embedded demo's admin address].
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Admin address, overriding the config.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
        /// Admin token, overriding the config.
        #[arg(long, env = "WHARF_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the raw JSON of GET /status.
        #[arg(long, conflicts_with = "ready")]
        json: bool,
        /// Only ask whether wharf is ready to serve (GET /readyz, which needs
        /// no token): exit 0 when it is, 1 when it is not, is stopping, or
        /// does not answer within 3 seconds. For Docker HEALTHCHECK and
        /// Kubernetes probes.
        #[arg(long)]
        ready: bool,
    },
    /// Print a config for the tools around wharf: a Grafana dashboard, a
    /// Prometheus scrape config, a Filebeat config for the access log, a
    /// systemd unit, a Dockerfile, Kubernetes manifests.
    ///
    /// Example:
    ///   wharf export grafana > wharf-dashboard.json
    ///   wharf export prometheus > prometheus.yml
    ///   wharf export filebeat > filebeat.yml
    ///   wharf export systemd -c /etc/wharf/wharf.toml > /etc/systemd/system/wharf.service
    ///   wharf export dockerfile > Dockerfile
    ///   wharf export kubernetes --image my-app:1.0 > my-app.yaml
    #[command(verbatim_doc_comment)]
    Export {
        #[command(subcommand)]
        target: export::Target,
    },
    /// Make this machine trust the local CA of `tls.mode = "internal"`, as
    /// `caddy trust` and `mkcert -install` do: the system store (curl,
    /// OpenSSL, Go, Python) and the browsers' NSS databases (Chromium,
    /// Chrome, Firefox), so development certificates raise no warning.
    ///
    /// Example:
    ///   sudo wharf trust -c wharf.toml    # system store and your browsers
    ///   wharf trust                        # your browsers only (no root)
    ///   sudo wharf trust --uninstall
    ///
    /// Prints one line per store: ok, skip (with the fix) or FAIL.
    #[command(verbatim_doc_comment)]
    Trust {
        /// Config file.
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
        /// Remove the CA from the stores instead.
        #[arg(long)]
        uninstall: bool,
    },
    /// Print the bcrypt hash of a password, for
    /// `[site.route.basic_auth.users]` (like `caddy hash-password`).
    ///
    /// Example:
    ///   wharf hash-password                    # asks twice, without echo
    ///   printf '%s\n' "$PW" | wharf hash-password
    #[command(verbatim_doc_comment)]
    HashPassword {
        /// bcrypt cost: each step doubles the time a check takes.
        #[arg(long, default_value_t = 12)]
        cost: u32,
    },
    /// Ask a running wharf to reload its config (through the admin API).
    ///
    /// Example:
    ///   wharf reload                  # admin address from ./wharf.toml
    ///   wharf reload --admin 127.0.0.1:9180
    #[command(verbatim_doc_comment)]
    Reload {
        /// Config file to read server.admin from [default: wharf.toml; without
        /// it, the embedded demo's admin address].
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Admin address, overriding the config.
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
    },
}

/// Runs a parsed command line and returns the process exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Run { config } => run::run(config),
        Command::Check { config, print } => check::check(&config, print),
        Command::Doctor { config } => doctor::doctor(&config),
        Command::Echo { port, bind } => echo::echo(bind, port),
        Command::Reload { config, admin } => reload::reload(config.as_deref(), admin),
        Command::Status {
            config,
            admin,
            ready: true,
            ..
        } => status::ready(config.as_deref(), admin),
        Command::Status {
            config,
            admin,
            token,
            json,
            ready: false,
        } => status::status(config.as_deref(), admin, token, json),
        Command::Export { target } => export::export(target),
        Command::Trust { config, uninstall } => trust::trust(&config, uninstall),
        Command::HashPassword { cost } => hash_password::hash_password(cost),
        Command::Deploy { app, config, admin } => deploy::deploy(config.as_deref(), admin, &app),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("wharf: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Tasks a worker polls before it looks for new I/O events (tokio's
/// default is 61). Like nginx working through a whole `epoll_wait` batch,
/// a busy worker finishes the requests that are ready before taking more:
/// with 256 busy keep-alive connections on one core this gave 3–5% more
/// requests per second and a p99 of 3.8–4.9 ms instead of 5.0–6.0
/// (docs/performance.md); with 64 it changed nothing measurable.
const EVENT_INTERVAL: u32 = 256;

/// A multi-threaded tokio runtime for commands that serve.
///
/// `WHARF_WORKERS` sets the number of worker threads (default: one per
/// core), e.g. `WHARF_WORKERS=1` to compare with single-worker nginx or
/// HAProxy in bench/.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = workers_from_env()?;
    // One worker: a single-threaded scheduler, like one nginx worker. It
    // skips the work-stealing machinery (atomics, cross-thread wakeups)
    // that buys nothing on one core.
    let mut builder = if workers == Some(1) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder
        .enable_all()
        .thread_name("wharf")
        .event_interval(EVENT_INTERVAL);
    if let Some(workers) = workers.filter(|&w| w > 1) {
        builder.worker_threads(workers);
    }
    Ok(builder.build()?)
}

/// Reads `WHARF_WORKERS`: unset or empty means tokio's default.
fn workers_from_env() -> anyhow::Result<Option<usize>> {
    let Some(value) = std::env::var_os("WHARF_WORKERS") else {
        return Ok(None);
    };
    let value = value.to_string_lossy();
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse::<usize>() {
        Ok(workers) if workers > 0 => Ok(Some(workers)),
        _ => anyhow::bail!(
            "WHARF_WORKERS={value:?} is not a number of worker threads; \
             write a whole number of at least 1, e.g. WHARF_WORKERS=1"
        ),
    }
}
