//! `wharf doctor`: what would keep a valid config from working on this
//! machine, found before (or while) wharf runs, each with what to do.
//!
//! In: a loaded `Config` (`wharf check` already judged the file itself)
//! and, when one answers on the config's admin address, the wharf that is
//! running it ([`Running`]). Out: a [`Report`], one [`Finding`] per check,
//! each `ok`, `warn` or `FAIL`, grouped as a fault tree: listeners
//! (listeners.rs), fixed upstream servers (upstreams.rs), supervised apps
//! (apps.rs), static roots (static_roots.rs), certificates (tls.rs), the
//! open-file limit (open_files.rs).
//!
//! Everything here looks and lets go: sockets are bound and dropped at
//! once, upstream servers get one connection (and one health request), no
//! app is started, no DNS name is looked up. A check that cannot run (no
//! /proc, say) is a warning, never a panic.

mod apps;
mod listeners;
mod open_files;
mod running;
mod static_roots;
mod tls;
mod upstreams;

use std::fmt;
use std::time::SystemTime;

pub use running::Running;

use crate::config::Config;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Checked and fine.
    Ok,
    /// Works, but probably not as meant; wharf still starts.
    Warn,
    /// Will fail: wharf does not start, or a part of the config cannot work.
    Fail,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    /// What was checked, e.g. `server.listen 0.0.0.0:80`.
    pub what: String,
    /// What is wrong (empty for `ok`).
    pub why: String,
    /// What to do about it (empty when `why` already says it).
    pub fix: String,
}

impl Finding {
    pub fn ok(what: impl Into<String>) -> Finding {
        Finding {
            level: Level::Ok,
            what: what.into(),
            why: String::new(),
            fix: String::new(),
        }
    }

    pub fn warn(
        what: impl Into<String>,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            level: Level::Warn,
            what: what.into(),
            why: why.into(),
            fix: fix.into(),
        }
    }

    pub fn fail(
        what: impl Into<String>,
        why: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            level: Level::Fail,
            what: what.into(),
            why: why.into(),
            fix: fix.into(),
        }
    }
}

/// `ok   what`, `warn what: why; fix`, `FAIL what: why; fix`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        write!(f, "{tag} {}", self.what)?;
        if !self.why.is_empty() {
            write!(f, ": {}", self.why)?;
        }
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

/// Every finding, in the order the checks ran.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    /// Whether any check failed (`wharf doctor` then exits 1).
    pub fn failed(&self) -> bool {
        self.count(Level::Fail) > 0
    }

    /// "2 problems, 1 warning".
    pub fn summary(&self) -> String {
        let counted = |n: usize, one: &str| match n {
            0 => format!("no {one}s"),
            1 => format!("1 {one}"),
            n => format!("{n} {one}s"),
        };
        format!(
            "{}, {}",
            counted(self.count(Level::Fail), "problem"),
            counted(self.count(Level::Warn), "warning")
        )
    }
}

/// One line per finding, then the summary.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        writeln!(f, "{}", self.summary())
    }
}

/// Runs every check of `config` against this machine. `running` is the
/// wharf that answered on the config's admin address, if any: the ports
/// it holds are not conflicts. Binds sockets, so it runs inside a tokio
/// runtime.
pub async fn examine(config: &Config, running: Option<&Running>) -> Report {
    let mut report = Report::default();
    report.findings.extend(listeners::check(config, running));
    report.findings.extend(upstreams::check(config).await);
    report.findings.extend(apps::check(config, running));
    report.findings.extend(static_roots::check(config));
    report
        .findings
        .extend(tls::check(config, SystemTime::now()));
    report.push(open_files::check(running));
    report
}

/// A port's holder as text: " (held by pid 12 (nginx))", or nothing when
/// the holder is not visible.
fn held_by(holder: Option<&crate::server::holder::Holder>) -> String {
    holder.map_or_else(String::new, |h| format!(" (held by {h})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_summary_read_as_documented() {
        let mut report = Report::default();
        report.push(Finding::ok("server.listen 127.0.0.1:8080 is free"));
        assert_eq!(report.summary(), "no problems, no warnings");
        report.push(Finding::warn("open files", "limit 1024", "raise it"));
        report.push(Finding::fail("a", "b", "c"));
        report.push(Finding::fail("d", "e; f", ""));
        assert!(report.failed());
        assert_eq!(
            report.to_string(),
            "ok   server.listen 127.0.0.1:8080 is free\n\
             warn open files: limit 1024; raise it\n\
             FAIL a: b; c\n\
             FAIL d: e; f\n\
             2 problems, 1 warning\n"
        );
    }
}
