//! What the dashboard shows: its rows and panels, each a title, a unit
//! and PromQL queries over wharf's metrics. `grafana.rs` writes them as
//! Grafana JSON.

/// Selector added to every query.
const SELECT: &str = "instance=~\"$instance\"";

/// One panel: title, unit, queries as (PromQL, legend), and its width.
pub(super) struct Panel {
    pub(super) title: &'static str,
    pub(super) description: &'static str,
    pub(super) unit: &'static str,
    pub(super) queries: Vec<(String, &'static str)>,
    pub(super) width: u32,
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

pub(super) fn panels() -> Vec<(&'static str, Vec<Panel>)> {
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
