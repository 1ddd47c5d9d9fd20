//! `wharf export grafana|prometheus|filebeat|systemd|dockerfile|kubernetes`: print a file for the tools
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
    /// A systemd unit that runs wharf as a service: reload with `systemctl
    /// reload`, apps stopped after the drain, the open-file limit raised.
    ///
    /// Example:
    ///   wharf export systemd -c /etc/wharf/wharf.toml > /etc/systemd/system/wharf.service
    ///   wharf export systemd -c /etc/wharf/wharf.toml --user wharf
    ///   systemctl daemon-reload && systemctl enable --now wharf
    #[command(verbatim_doc_comment)]
    Systemd {
        /// Config file the service runs with (made absolute).
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
        /// User (and group) the service runs as [default: root].
        #[arg(long)]
        user: Option<String>,
        /// The wharf binary the service runs [default: this one].
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// A Dockerfile: wharf, the config and the config's directory (the
    /// app's binary, static files) in one image, checked while it builds,
    /// with a health check, a volume for certificates, and time to drain.
    ///
    /// Example:
    ///   cd /srv/my-app && wharf export dockerfile > Dockerfile
    ///   cp "$(command -v wharf)" wharf && docker build -t my-app .
    #[command(verbatim_doc_comment)]
    Dockerfile {
        /// Config file the image runs with; its directory is the build context.
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
        /// Base image; its glibc must be at least as new as the one wharf
        /// was built against.
        #[arg(long, default_value = export::dockerfile::DEFAULT_BASE)]
        base: String,
    },
    /// Kubernetes manifests that run the image of `wharf export dockerfile`:
    /// a Deployment with wharf's readiness check and a drain on every
    /// rollout, a Service, and a volume for certificates when wharf makes
    /// them.
    ///
    /// Example:
    ///   wharf export kubernetes --image registry.example.com/my-app:1.0 > my-app.yaml
    ///   wharf export kubernetes -c /srv/my-app/wharf.toml --image my-app:1.0 --replicas 3
    ///   kubectl apply -f my-app.yaml
    #[command(verbatim_doc_comment)]
    Kubernetes {
        /// Config file the image runs with.
        #[arg(short, long, default_value = "wharf.toml")]
        config: PathBuf,
        /// The image built from `wharf export dockerfile`.
        #[arg(long)]
        image: String,
        /// Name of the Deployment and Service.
        #[arg(long, default_value = "wharf")]
        name: String,
        /// Namespace of every resource [default: kubectl's current one].
        #[arg(long)]
        namespace: Option<String>,
        /// Pods. A config that orders or makes its certificates (ACME,
        /// local CA) runs as one.
        #[arg(long, default_value_t = 1)]
        replicas: u32,
        /// ClusterIP, NodePort or LoadBalancer [default: LoadBalancer when
        /// the config has HTTPS listeners, else ClusterIP].
        #[arg(long)]
        service_type: Option<String>,
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
        Target::Systemd {
            config,
            user,
            binary,
        } => systemd(&config, user, binary),
        Target::Dockerfile { config, base } => {
            container_config(&config).and_then(|(file, loaded)| {
                export::dockerfile::render(&loaded, &file, &export::dockerfile::Options { base })
                    .map(warn)
            })
        }
        Target::Kubernetes {
            config,
            image,
            name,
            namespace,
            replicas,
            service_type,
        } => container_config(&config).and_then(|(file, loaded)| {
            let options = export::kubernetes::Options {
                image,
                name,
                namespace,
                replicas,
                service_type,
            };
            export::kubernetes::render(&loaded, &file, &options).map(warn)
        }),
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

/// The unit for `config`, which must exist: the service runs with it.
fn systemd(config: &Path, user: Option<String>, binary: Option<PathBuf>) -> Result<String, String> {
    let absolute = std::fs::canonicalize(config).map_err(|error| {
        format!(
            "cannot read the config {}: {error}; give the file the service will run with (-c /etc/wharf/wharf.toml)",
            config.display()
        )
    })?;
    let binary = match binary {
        Some(path) => {
            std::path::absolute(&path).map_err(|error| format!("{}: {error}", path.display()))?
        }
        None => std::env::current_exe().map_err(|error| {
            format!("cannot tell where this wharf binary is ({error}); give --binary")
        })?,
    };
    if let Some(user) = &user {
        let valid = !user.is_empty()
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(format!(
                "--user {user:?} is not a user name systemd accepts (letters, digits, _ - .)"
            ));
        }
    }
    let loaded = config::load(&absolute).map_err(|errors| errors.to_string())?;
    let options = export::systemd::Options {
        binary: binary.display().to_string(),
        config: absolute.display().to_string(),
        user,
    };
    export::systemd::render(&loaded, &options)
}

/// The config file an image runs with, absolute, and loaded.
fn container_config(config: &Path) -> Result<(PathBuf, Config), String> {
    let absolute = std::fs::canonicalize(config).map_err(|error| {
        format!(
            "cannot read the config {}: {error}; the image runs with a config file, give it with -c",
            config.display()
        )
    })?;
    let loaded =
        config::load_for(&absolute, config::Machine::Image).map_err(|errors| errors.to_string())?;
    Ok((absolute, loaded))
}

/// Prints the generator's warnings to stderr and passes its text on.
fn warn((text, warnings): (String, Vec<String>)) -> String {
    for warning in warnings {
        eprintln!("wharf: warning: {warning}");
    }
    text
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
