//! Weighted least connections: send the request to the eligible server with
//! the fewest requests in flight relative to its weight.
//!
//! A server's load is `in_flight / weight`; loads are compared by cross
//! multiplication (`in_flight_a * weight_b < in_flight_b * weight_a`) so the
//! comparison is exact integer math. This adapts to slow servers: one that
//! takes longer per request accumulates in-flight requests and gets fewer
//! new ones, which round robin cannot do.
//!
//! Ties matter more than they look: an idle pool has every load at zero, so
//! a plain minimum would send every sequential request to the first server.
//! Ties are broken by smooth weighted round robin over just the servers tied
//! at the minimum, so idle servers share traffic in proportion to their
//! weights (3:1 weights give 75/25) and equal servers take turns.
//!
//! Cost: two passes over the members (find the minimum, then choose among
//! the tied) and the round robin's short mutex; no allocation per pick.

use std::net::IpAddr;

use super::round_robin::SmoothWeighted;
use super::select::Select;
use super::Member;

/// Weighted least connections with weighted round robin among ties.
#[derive(Debug)]
pub struct LeastConn {
    ties: SmoothWeighted,
}

impl LeastConn {
    /// State for a pool of `members` servers.
    pub fn new(members: usize) -> Self {
        LeastConn {
            ties: SmoothWeighted::new(members),
        }
    }
}

/// A member's load as `(in_flight, weight)`, compared by cross multiplication.
fn load(member: &Member) -> (u128, u128) {
    (
        member.state.in_flight() as u128,
        u128::from(member.weight.max(1)),
    )
}

/// `a` is strictly less loaded than `b`.
fn less((in_flight_a, weight_a): (u128, u128), (in_flight_b, weight_b): (u128, u128)) -> bool {
    in_flight_a * weight_b < in_flight_b * weight_a
}

impl Select for LeastConn {
    fn pick(
        &self,
        members: &[Member],
        eligible: &dyn Fn(usize) -> bool,
        client: IpAddr,
    ) -> Option<usize> {
        let mut best: Option<(usize, (u128, u128))> = None;
        for (i, member) in members.iter().enumerate() {
            if !eligible(i) {
                continue;
            }
            let candidate = load(member);
            if best.is_none_or(|(_, least)| less(candidate, least)) {
                best = Some((i, candidate));
            }
        }
        let (first, least) = best?;

        let tied = |i: usize| {
            let candidate = match members.get(i) {
                Some(member) => load(member),
                None => return false,
            };
            eligible(i) && !less(candidate, least) && !less(least, candidate)
        };
        // In-flight counts move concurrently; if every tied server got busier
        // between the two passes, the least loaded one seen is still a fine
        // answer.
        self.ties.pick(members, &tied, client).or(Some(first))
    }
}

#[cfg(test)]
mod tests {
    use super::super::round_robin::tests::{client, members};
    use super::*;

    #[test]
    fn busy_server_is_avoided_while_others_are_idle() {
        let members = members(&[1, 1, 1]);
        let lc = LeastConn::new(members.len());
        let _held: Vec<_> = (0..3).map(|_| members[0].state.start_request()).collect();
        let mut counts = [0; 3];
        for _ in 0..300 {
            counts[lc.pick(&members, &|_| true, client()).unwrap()] += 1;
        }
        println!("least_conn with 3 in flight on server 0: {counts:?}");
        assert_eq!(counts, [0, 150, 150]);
    }

    #[test]
    fn picks_fill_the_least_loaded_server_first() {
        let members = members(&[1, 1]);
        let lc = LeastConn::new(members.len());
        let _held: Vec<_> = (0..2).map(|_| members[0].state.start_request()).collect();
        // Simulate requests that stay in flight: server 1 catches up to 2
        // before server 0 gets any more.
        let mut guards = Vec::new();
        let mut picks = Vec::new();
        for _ in 0..4 {
            let i = lc.pick(&members, &|_| true, client()).unwrap();
            picks.push(i);
            guards.push(members[i].state.start_request());
        }
        assert_eq!(&picks[..2], &[1, 1]);
        assert_eq!(members[0].state.in_flight(), 3);
        assert_eq!(members[1].state.in_flight(), 3);
    }

    #[test]
    fn idle_servers_share_traffic_by_weight() {
        let members = members(&[3, 1]);
        let lc = LeastConn::new(members.len());
        let mut counts = [0usize; 2];
        for _ in 0..10_000 {
            counts[lc.pick(&members, &|_| true, client()).unwrap()] += 1;
        }
        println!("least_conn idle 3:1 over 10000 picks: {counts:?}");
        assert!((7_200..=7_800).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn load_is_in_flight_per_weight() {
        let members = members(&[4, 1]);
        let lc = LeastConn::new(members.len());
        let _a: Vec<_> = (0..4).map(|_| members[0].state.start_request()).collect();
        let _b: Vec<_> = (0..2).map(|_| members[1].state.start_request()).collect();
        // 4/4 = 1 < 2/1 = 2.
        for _ in 0..10 {
            assert_eq!(lc.pick(&members, &|_| true, client()), Some(0));
        }
    }

    #[test]
    fn ineligible_or_empty_gives_none_or_skips() {
        let members = members(&[1, 1]);
        let lc = LeastConn::new(members.len());
        assert_eq!(lc.pick(&members, &|_| false, client()), None);
        for _ in 0..10 {
            assert_eq!(lc.pick(&members, &|i| i == 1, client()), Some(1));
        }
    }
}
