//! Can each `static` route's directory be read, and does its path answer?
//! A directory answers with its `index.html`; without one the route's own
//! path (say `/`) answers 404, and with `spa = true` so does every path
//! that is not a file, since the fallback is that same `index.html`.

use std::path::Path;

use super::Finding;
use crate::config::{Action, Config, HostPattern, Site};

/// One finding per static route.
pub fn check(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    for site in &config.sites {
        for route in &site.routes {
            if let Action::Static { root, spa } = &route.action {
                let what = format!("static {}{} ({})", host(site), route.path, root.display());
                findings.push(root_finding(what, root, &route.path, *spa));
            }
        }
    }
    findings
}

fn root_finding(what: String, root: &Path, path: &str, spa: bool) -> Finding {
    if let Err(error) = std::fs::read_dir(root) {
        return Finding::fail(
            what,
            format!("{} cannot be read: {error}", root.display()),
            "let wharf's user read and enter it (chmod a+rX), or fix the route's static path",
        );
    }
    let index = root.join("index.html");
    match std::fs::File::open(&index) {
        Ok(_) => Finding::ok(format!("{what} is readable and has index.html")),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && spa => Finding::warn(
            what,
            format!(
                "spa = true answers index.html for every path that is not a file, but there is no {}: those answer 404",
                index.display()
            ),
            "add the app's index.html there, or set spa = false",
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Finding::warn(
            what,
            format!("there is no index.html in it, so {path} there answers 404"),
            format!("add an index.html, or link to the files under {path} directly"),
        ),
        Err(error) => Finding::warn(
            what,
            format!("{} cannot be read: {error}", index.display()),
            "let wharf's user read it",
        ),
    }
}

/// The site's first host, as routes are shown: `example.com/static/`.
fn host(site: &Site) -> String {
    match site.hosts.first() {
        None | Some(HostPattern::Any) => "*".to_string(),
        Some(pattern) => pattern.to_string(),
    }
}
