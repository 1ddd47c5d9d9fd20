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

pub mod filebeat;
pub mod grafana;
pub mod prometheus;
pub mod systemd;
