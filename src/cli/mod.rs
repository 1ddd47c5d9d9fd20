//! Command-line interface: one file per subcommand. The only place that
//! uses `anyhow`; everything below returns typed errors.

mod check;
mod demo;
mod echo;
mod reload;
mod run;

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
    /// Ask a running wharf to reload its config (through the admin API).
    ///
    /// Example:
    ///   wharf reload                  # admin address from ./wharf.toml
    ///   wharf reload --admin 127.0.0.1:9180
    #[command(verbatim_doc_comment)]
    Reload {
        /// Config file to read server.admin from.
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
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
        Command::Echo { port, bind } => echo::echo(bind, port),
        Command::Reload { config, admin } => reload::reload(&config, admin),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("wharf: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-threaded tokio runtime for commands that serve.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wharf")
        .build()?)
}
