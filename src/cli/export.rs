//! `wharf export grafana|prometheus|filebeat`: print a file for the tools
//! around wharf, made from the config (see src/export/).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use crate::config::{self, Config};
use crate::export;

#[derive(Debug, Subcommand)]
pub enum Target {
    /// A Grafana dashboard (JSON) over wharf's Prometheus metrics.
    ///
    /// Example:
    ///   wharf export grafana > wharf-dashboard.json   # Grafana: Dashboards → New → Import
    #[command(verbatim_doc_comment)]
    Grafana,
    /// A prometheus.yml that scrapes wharf's /metrics.
    ///
    /// Example:
    ///   wharf export prometheus -c /etc/wharf.toml > /etc/prometheus/wharf.yml
    ///   wharf export prometheus --target 10.0.0.5:9180 --scrape-interval 30s
    #[command(verbatim_doc_comment)]
    Prometheus {
        /// Config file to read server.admin and admin_token from.
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
        /// host:port to scrape [default: server.admin].
        #[arg(long)]
        target: Option<String>,
        /// How often Prometheus scrapes.
        #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
        scrape_interval: Duration,
        /// File Prometheus reads the admin token from (when admin_token is set).
        #[arg(long, default_value = "/etc/prometheus/wharf-admin-token")]
        token_file: String,
    },
    /// A filebeat.yml that ships the JSON access log (ECS) to Elasticsearch.
    ///
    /// Example:
    ///   wharf export filebeat -c /etc/wharf.toml > /etc/filebeat/filebeat.yml
    ///   wharf export filebeat --elasticsearch https://es.internal:9200
    #[command(verbatim_doc_comment)]
    Filebeat {
        /// Config file to read log.access from.
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
        /// Elasticsearch URL.
        #[arg(long, default_value = "http://localhost:9200")]
        elasticsearch: String,
        /// systemd unit whose journal holds the log when log.access is stdout.
        #[arg(long, default_value = "wharf.service")]
        unit: String,
    },
}

pub fn export(target: Target) -> anyhow::Result<ExitCode> {
    let text = match target {
        Target::Grafana => Ok(export::grafana::render()),
        Target::Prometheus {
            config,
            target,
            scrape_interval,
            token_file,
        } => {
            let options = export::prometheus::Options {
                target,
                scrape_interval,
                token_file,
            };
            export::prometheus::render(&load(&config)?, &options)
        }
        Target::Filebeat {
            config,
            elasticsearch,
            unit,
        } => {
            let options = export::filebeat::Options {
                elasticsearch,
                unit,
            };
            export::filebeat::render(&load(&config)?, &options)
        }
    };
    match text {
        Ok(text) => {
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("wharf: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The config file, or the defaults when the default file does not exist.
fn load(path: &Path) -> anyhow::Result<Config> {
    if !path.exists() && path == Path::new("wharf.toml") {
        let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        return config::parse("", "<defaults>", &base, &|key| std::env::var(key).ok())
            .map_err(|errors| anyhow::anyhow!("{errors}"));
    }
    config::load(path).map_err(|errors| anyhow::anyhow!("{errors}"))
}
