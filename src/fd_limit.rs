//! The open-file limit.
//!
//! Every client connection wharf proxies holds two file descriptors (the
//! client's and the upstream's), and most systems start services with a
//! soft limit of 1,024: about 500 connections, after which `accept` fails
//! with "Too many open files". `wharf run` raises its soft limit to the
//! hard one at start, as Go programs do and as nginx's
//! `worker_rlimit_nofile` is set for, and warns when the hard limit itself
//! is low. Supervised apps get back the soft limit wharf was started with
//! (programs using `select` break above 1,024), unless their
//! `open_files` sets one.

use std::sync::OnceLock;

/// Below this hard limit wharf warns at start: it holds about half as many
/// proxied connections.
pub const LOW: u64 = 4096;

/// A soft and hard `RLIMIT_NOFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: u64,
    pub hard: u64,
}

/// The limit wharf was started with, set by [`raise`].
static STARTED_WITH: OnceLock<Limit> = OnceLock::new();

/// Why the limit could not be read or raised.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("cannot read the open-file limit (getrlimit): {0}")]
    Read(std::io::Error),
    #[error("cannot raise the open-file limit from {from} to {to} (setrlimit): {source}")]
    Raise {
        from: u64,
        to: u64,
        source: std::io::Error,
    },
}

/// The current limit.
pub fn current() -> Result<Limit, LimitError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(LimitError::Read(std::io::Error::last_os_error()));
    }
    Ok(Limit {
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// The limit of process `pid`, from `/proc/PID/limits` (another wharf,
/// for `wharf doctor`).
pub fn of_process(pid: u32) -> Result<Limit, LimitError> {
    let path = format!("/proc/{pid}/limits");
    let text = std::fs::read_to_string(&path).map_err(LimitError::Read)?;
    parse_limits(&text).ok_or_else(|| {
        LimitError::Read(std::io::Error::other(format!(
            "no \"Max open files\" line in {path}"
        )))
    })
}

/// The "Max open files" line of a `/proc/PID/limits` text; "unlimited"
/// reads as `u64::MAX`.
fn parse_limits(text: &str) -> Option<Limit> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let mut number = || match fields.next()? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    };
    Some(Limit {
        soft: number()?,
        hard: number()?,
    })
}

/// Raises the soft limit to the hard one and remembers the limit wharf
/// was started with (for [`started_with`]). Returns the limit before and
/// after.
pub fn raise() -> Result<(Limit, Limit), LimitError> {
    let before = current()?;
    let _ = STARTED_WITH.set(before);
    if before.soft >= before.hard {
        return Ok((before, before));
    }
    let wanted = libc::rlimit {
        rlim_cur: before.hard,
        rlim_max: before.hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } != 0 {
        return Err(LimitError::Raise {
            from: before.soft,
            to: before.hard,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok((
        before,
        Limit {
            soft: before.hard,
            hard: before.hard,
        },
    ))
}

/// The limit wharf was started with, when [`raise`] changed it; what a
/// supervised app is given back.
pub fn started_with() -> Option<Limit> {
    let started = *STARTED_WITH.get()?;
    let now = current().ok()?;
    (now != started).then_some(started)
}

/// What to say about a hard limit that caps wharf well below what a busy
/// server needs; `None` when it is high enough.
pub fn low_limit_advice(hard: u64) -> Option<String> {
    (hard < LOW).then(|| {
        format!(
            "wharf may open at most {hard} files (the hard open-file limit), so it can \
             proxy about {} connections at once; raise the hard limit before starting \
             wharf: LimitNOFILE=65536 in its systemd unit, or `ulimit -Hn 65536` as root",
            hard / 2
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_line_of_proc_limits_is_read() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(
            parse_limits(text),
            Some(Limit {
                soft: 1024,
                hard: 524_288
            })
        );
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_limits(unlimited).map(|l| l.hard), Some(u64::MAX));
        assert_eq!(parse_limits("Max processes 10 10 processes\n"), None);
        let own = of_process(std::process::id()).expect("this process' limits");
        assert_eq!(own, current().expect("current"));
    }

    #[test]
    fn a_low_hard_limit_is_explained_with_the_connections_it_allows() {
        let advice = low_limit_advice(1024).expect("1024 is low");
        assert!(advice.contains("at most 1024 files"), "{advice}");
        assert!(advice.contains("about 512 connections"), "{advice}");
        assert!(advice.contains("LimitNOFILE"), "{advice}");
        assert_eq!(low_limit_advice(LOW), None);
        assert_eq!(low_limit_advice(1 << 20), None);
    }
}
