//! Is the hard open-file limit high enough? `wharf run` raises its soft
//! limit to the hard one (`fd_limit`), so only a low hard limit caps the
//! connections it can hold. This reads the limit of the wharf serving the
//! config when one is running, else that of the shell running `wharf
//! doctor` (a systemd service gets its unit's `LimitNOFILE` instead).

use super::{Finding, Running};
use crate::fd_limit::{self, Limit, LimitError};

const WHAT: &str = "open files";

pub fn check(running: Option<&Running>) -> Finding {
    if let Some(running) = running {
        if let Ok(limit) = fd_limit::of_process(running.pid) {
            return of_running(running.pid, limit);
        }
    }
    finding(fd_limit::current())
}

/// The limit the running wharf has: what it can hold now.
fn of_running(pid: u32, limit: Limit) -> Finding {
    match fd_limit::low_limit_advice(limit.hard) {
        Some(advice) => Finding::warn(
            format!("{WHAT} of wharf (pid {pid})"),
            advice,
            "then restart it",
        ),
        None if limit.soft < limit.hard => Finding::warn(
            format!("{WHAT} of wharf (pid {pid})"),
            format!(
                "it may open {} files, below its hard limit of {}: it was started by a wharf that does not raise its limit",
                limit.soft, limit.hard
            ),
            "restart it with this wharf",
        ),
        None => Finding::ok(format!(
            "{WHAT}: wharf (pid {pid}) may open {} files",
            limit.soft
        )),
    }
}

fn finding(limit: Result<Limit, LimitError>) -> Finding {
    match limit {
        Err(error) => Finding::warn(
            WHAT,
            error.to_string(),
            "check the limit with `ulimit -Hn`",
        ),
        // The advice says why and what to do, in that order.
        Ok(limit) => match fd_limit::low_limit_advice(limit.hard) {
            Some(advice) => Finding::warn(WHAT, advice, ""),
            None => Finding::ok(format!(
                "{WHAT}: the hard limit is {} (this shell's; a systemd service has its unit's LimitNOFILE)",
                limit.hard
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::*;

    #[test]
    fn a_low_hard_limit_is_a_warning_with_the_advice() {
        let low = finding(Ok(Limit {
            soft: 1024,
            hard: 1024,
        }));
        assert_eq!(low.level, Level::Warn);
        assert!(low.to_string().contains("LimitNOFILE=65536"), "{low}");
        let high = finding(Ok(Limit {
            soft: 1024,
            hard: 1 << 20,
        }));
        assert_eq!(high.level, Level::Ok, "{high}");
        let unreadable = finding(Err(LimitError::Read(std::io::Error::other("no"))));
        assert_eq!(unreadable.level, Level::Warn);
    }

    #[test]
    fn the_running_wharf_is_judged_by_its_own_limit() {
        let raised = of_running(
            7,
            Limit {
                soft: 65536,
                hard: 65536,
            },
        );
        assert_eq!(raised.level, Level::Ok, "{raised}");
        assert!(
            raised
                .to_string()
                .contains("wharf (pid 7) may open 65536 files"),
            "{raised}"
        );
        let low = of_running(
            7,
            Limit {
                soft: 1024,
                hard: 1024,
            },
        );
        assert_eq!(low.level, Level::Warn);
        assert!(low.to_string().contains("wharf (pid 7)"), "{low}");
        assert!(low.to_string().contains("LimitNOFILE=65536"), "{low}");
        let unraised = of_running(
            7,
            Limit {
                soft: 1024,
                hard: 65536,
            },
        );
        assert_eq!(unraised.level, Level::Warn, "{unraised}");
    }
}
