//! `wharf export grafana`: a Grafana dashboard over wharf's metrics.
//!
//! Every query uses only metric names wharf exports (tests/observe.rs
//! checks them against a real scrape). The dashboard asks for its
//! Prometheus data source and the wharf instance as variables, so it
//! imports into any Grafana (Dashboards → Import, or provisioning).

use serde_json::{json, Value};

/// Selector added to every query.
const SELECT: &str = "instance=~\"$instance\"";

/// One panel: title, unit, queries as (PromQL, legend), and its width.
struct Panel {
    title: &'static str,
    description: &'static str,
    unit: &'static str,
    queries: Vec<(String, &'static str)>,
    width: u32,
}

fn q(expr: String, legend: &'static str) -> (String, &'static str) {
    (expr, legend)
}

fn rate(metric: &str, filter: &str, by: &str) -> String {
    let filter = if filter.is_empty() {
        SELECT.to_string()
    } else {
        format!("{SELECT},{filter}")
    };
    format!("sum by ({by}) (rate({metric}{{{filter}}}[$__rate_interval]))")
}

fn quantile(quantile: &str, metric: &str, by: &str) -> String {
    let by = if by.is_empty() {
        "le".to_string()
    } else {
        format!("le, {by}")
    };
    format!(
        "histogram_quantile({quantile}, sum by ({by}) (rate({metric}_bucket{{{SELECT}}}[$__rate_interval])))"
    )
}

fn panels() -> Vec<(&'static str, Vec<Panel>)> {
    let requests = "wharf_requests_total";
    let duration = "wharf_request_duration_seconds";
    let upstream_duration = "wharf_upstream_response_duration_seconds";
    vec![
        (
            "Traffic",
            vec![
                Panel {
                    title: "Requests per second by site",
                    description: "All answered requests, by the site's first host.",
                    unit: "reqps",
                    queries: vec![q(rate(requests, "", "site"), "{{site}}")],
                    width: 8,
                },
                Panel {
                    title: "5xx error ratio by site",
                    description: "Share of answers with a 5xx status.",
                    unit: "percentunit",
                    queries: vec![q(
                        format!(
                            "{} / {}",
                            rate(requests, "status_class=\"5xx\"", "site"),
                            rate(requests, "", "site")
                        ),
                        "{{site}}",
                    )],
                    width: 8,
                },
                Panel {
                    title: "Request latency",
                    description: "From request head to the end of the response body.",
                    unit: "s",
                    queries: vec![
                        q(quantile("0.5", duration, ""), "p50"),
                        q(quantile("0.95", duration, ""), "p95"),
                        q(quantile("0.99", duration, ""), "p99"),
                    ],
                    width: 8,
                },
                Panel {
                    title: "Requests by route and status class",
                    description: "Route is the configured path prefix.",
                    unit: "reqps",
                    queries: vec![q(
                        rate(requests, "", "site, route, status_class"),
                        "{{site}} {{route}} {{status_class}}",
                    )],
                    width: 12,
                },
                Panel {
                    title: "In flight and open connections",
                    description: "Requests being answered and client connections open now.",
                    unit: "short",
                    queries: vec![
                        q(
                            format!("sum(wharf_requests_in_flight{{{SELECT}}})"),
                            "requests in flight",
                        ),
                        q(
                            format!("sum by (listener) (wharf_connections_open{{{SELECT}}})"),
                            "connections {{listener}}",
                        ),
                    ],
                    width: 12,
                },
            ],
        ),
        (
            "Upstreams",
            vec![
                Panel {
                    title: "Upstream servers available",
                    description: "1 = may get requests (up, not ejected, breaker closed, not draining).",
                    unit: "short",
                    queries: vec![q(
                        format!("wharf_upstream_server_available{{{SELECT}}}"),
                        "{{upstream}} {{server}}",
                    )],
                    width: 8,
                },
                Panel {
                    title: "Upstream response time p95",
                    description: "Time to the upstream's response head, per attempt.",
                    unit: "s",
                    queries: vec![q(
                        quantile("0.95", upstream_duration, "upstream"),
                        "{{upstream}}",
                    )],
                    width: 8,
                },
                Panel {
                    title: "Upstream failures, retries, ejections",
                    description: "Per second: failed attempts, retries on another server, passive ejections, breaker openings.",
                    unit: "ops",
                    queries: vec![
                        q(
                            rate("wharf_upstream_server_failures_total", "", "upstream"),
                            "failures {{upstream}}",
                        ),
                        q(
                            rate("wharf_upstream_retries_total", "", "upstream"),
                            "retries {{upstream}}",
                        ),
                        q(
                            rate("wharf_upstream_server_ejections_total", "", "upstream"),
                            "ejections {{upstream}}",
                        ),
                        q(
                            rate("wharf_upstream_server_breaker_opens_total", "", "upstream"),
                            "breaker opens {{upstream}}",
                        ),
                    ],
                    width: 8,
                },
                Panel {
                    title: "Upstream requests in flight",
                    description: "Requests each server is answering now.",
                    unit: "short",
                    queries: vec![q(
                        format!("wharf_upstream_server_in_flight{{{SELECT}}}"),
                        "{{upstream}} {{server}}",
                    )],
                    width: 12,
                },
                Panel {
                    title: "Health, ejection and breaker",
                    description: "Active health up (1/0), passive ejection and open breakers.",
                    unit: "short",
                    queries: vec![
                        q(
                            format!("wharf_upstream_server_up{{{SELECT}}}"),
                            "up {{upstream}} {{server}}",
                        ),
                        q(
                            format!("wharf_upstream_server_ejected{{{SELECT}}}"),
                            "ejected {{upstream}} {{server}}",
                        ),
                        q(
                            format!("wharf_upstream_server_breaker_open{{{SELECT}}}"),
                            "breaker open {{upstream}} {{server}}",
                        ),
                    ],
                    width: 12,
                },
            ],
        ),
        (
            "Apps and certificates",
            vec![
                Panel {
                    title: "App instances up",
                    description: "Supervised instances running and healthy.",
                    unit: "short",
                    queries: vec![q(
                        format!("sum by (app) (wharf_app_instance_up{{{SELECT}}})"),
                        "{{app}}",
                    )],
                    width: 8,
                },
                Panel {
                    title: "App restarts (last hour)",
                    description: "Restarts wharf made per instance.",
                    unit: "short",
                    queries: vec![q(
                        format!(
                            "increase(wharf_app_instance_restarts_total{{{SELECT}}}[1h])"
                        ),
                        "{{app}} #{{instance}}",
                    )],
                    width: 8,
                },
                Panel {
                    title: "Certificate days left",
                    description: "Days until each certificate expires.",
                    unit: "d",
                    queries: vec![q(
                        format!(
                            "(wharf_certificate_expiry_timestamp_seconds{{{SELECT}}} - time()) / 86400"
                        ),
                        "{{host}}",
                    )],
                    width: 8,
                },
            ],
        ),
        (
            "Process",
            vec![
                Panel {
                    title: "CPU",
                    description: "CPU seconds per second used by wharf.",
                    unit: "percentunit",
                    queries: vec![q(
                        format!("rate(process_cpu_seconds_total{{{SELECT}}}[$__rate_interval])"),
                        "cpu",
                    )],
                    width: 6,
                },
                Panel {
                    title: "Memory",
                    description: "Resident memory.",
                    unit: "bytes",
                    queries: vec![q(
                        format!("process_resident_memory_bytes{{{SELECT}}}"),
                        "resident",
                    )],
                    width: 6,
                },
                Panel {
                    title: "Open files",
                    description: "Open file descriptors against the limit.",
                    unit: "short",
                    queries: vec![
                        q(format!("process_open_fds{{{SELECT}}}"), "open"),
                        q(format!("process_max_fds{{{SELECT}}}"), "limit"),
                    ],
                    width: 6,
                },
                Panel {
                    title: "Config reloads",
                    description: "Reloads in the last hour by result.",
                    unit: "short",
                    queries: vec![q(
                        format!(
                            "sum by (result) (increase(wharf_config_reloads_total{{{SELECT}}}[1h]))"
                        ),
                        "{{result}}",
                    )],
                    width: 6,
                },
            ],
        ),
    ]
}

/// The dashboard, as pretty JSON.
pub fn render() -> String {
    let datasource = json!({ "type": "prometheus", "uid": "${datasource}" });
    let mut out: Vec<Value> = Vec::new();
    let mut id = 1;
    let mut y = 0;
    for (row, panels) in panels() {
        out.push(json!({
            "id": id, "type": "row", "title": row, "collapsed": false,
            "gridPos": { "h": 1, "w": 24, "x": 0, "y": y },
            "panels": [],
        }));
        id += 1;
        y += 1;
        let mut x = 0;
        for panel in panels {
            if x + panel.width > 24 {
                x = 0;
                y += 8;
            }
            let targets: Vec<Value> = panel
                .queries
                .iter()
                .enumerate()
                .map(|(i, (expr, legend))| {
                    json!({
                        "refId": char::from(b'A' + i as u8).to_string(),
                        "datasource": datasource,
                        "expr": expr,
                        "legendFormat": legend,
                    })
                })
                .collect();
            out.push(json!({
                "id": id,
                "type": "timeseries",
                "title": panel.title,
                "description": panel.description,
                "datasource": datasource,
                "gridPos": { "h": 8, "w": panel.width, "x": x, "y": y },
                "fieldConfig": { "defaults": { "unit": panel.unit }, "overrides": [] },
                "options": { "legend": { "displayMode": "list", "placement": "bottom" } },
                "targets": targets,
            }));
            id += 1;
            x += panel.width;
        }
        y += 8;
    }
    let dashboard = json!({
        "title": "wharf",
        "uid": "wharf",
        "description": "Generated by `wharf export grafana`: traffic, upstreams, apps, certificates and the wharf process.",
        "tags": ["wharf"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": { "from": "now-1h", "to": "now" },
        "templating": { "list": [
            {
                "name": "datasource", "label": "Prometheus", "type": "datasource",
                "query": "prometheus", "current": {}, "hide": 0,
            },
            {
                "name": "instance", "label": "wharf", "type": "query",
                "datasource": datasource,
                "query": { "query": "label_values(wharf_build_info, instance)", "refId": "instance" },
                "definition": "label_values(wharf_build_info, instance)",
                "refresh": 2, "includeAll": true, "multi": true, "allValue": ".*",
                "current": { "text": "All", "value": "$__all" }, "hide": 0,
            },
        ]},
        "panels": out,
    });
    serde_json::to_string_pretty(&dashboard).unwrap_or_default()
}

/// Every metric name a query of the dashboard reads (for tests and docs).
pub fn metric_names() -> Vec<String> {
    let mut names: Vec<String> = panels()
        .iter()
        .flat_map(|(_, panels)| panels.iter())
        .flat_map(|panel| panel.queries.iter())
        .flat_map(|(expr, _)| names_in(expr))
        .chain(std::iter::once("wharf_build_info".to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Identifiers in a PromQL expression that look like wharf or process
/// metric names.
pub fn names_in(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("wharf_") || word.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_is_json_and_every_query_has_an_instance_selector() {
        let dashboard: Value = serde_json::from_str(&render()).expect("json");
        let panels = dashboard["panels"].as_array().expect("panels");
        let mut queries = 0;
        for panel in panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("expr");
                assert!(expr.contains("$instance"), "{expr}");
                queries += 1;
            }
        }
        assert!(queries >= 20, "{queries} queries");
        assert!(metric_names().contains(&"wharf_requests_total".to_string()));
        assert!(metric_names()
            .iter()
            .any(|n| n == "wharf_request_duration_seconds_bucket"));
    }
}
