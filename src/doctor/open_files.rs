//! Is the hard open-file limit high enough? `wharf run` raises its soft
//! limit to the hard one (`fd_limit`), so only a low hard limit caps the
//! connections it can hold. This reads the limit of the shell running
//! `wharf doctor`; a systemd service gets its unit's `LimitNOFILE`.

use super::Finding;
use crate::fd_limit::{self, Limit, LimitError};

const WHAT: &str = "open files";

pub fn check() -> Finding {
    finding(fd_limit::current())
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
}
