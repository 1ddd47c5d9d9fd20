//! Generators: files wharf writes for the tools around it, from the
//! config it runs with. Each generator is a pure function from a `Config`
//! (plus a few options) to text; `cli/export.rs` prints it.
//!
//! - `grafana`: a dashboard over the metrics in `observe/metrics.rs` and
//!   `observe/scrape.rs`.
//! - `prometheus`: a prometheus.yml that scrapes the admin API.
//! - `filebeat`: a filebeat.yml that ships the JSON access log (ECS fields)
//!   to Elasticsearch.
//! - `systemd`: a unit file that runs wharf as a service.
//! - `dockerfile` and `kubernetes`: an image of wharf with its config and
//!   the config's directory, and the manifests that run it on a cluster;
//!   `container` reads what both need from the config.

pub mod container;
pub mod dockerfile;
pub mod filebeat;
pub mod grafana;
pub mod kubernetes;
pub mod prometheus;
pub mod systemd;
