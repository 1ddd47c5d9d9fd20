//! Power of two choices, for `balance = "p2c"`.
//!
//! Draw two distinct eligible servers at random (each with probability
//! proportional to its weight) and send the request to the one with less
//! load, `in_flight / weight`. Sampling just two avoids both the herd
//! effect of every proxy chasing the single least loaded server with stale
//! counts and the blindness of pure random: the expected worst-case load
//! drops exponentially compared with one random choice, while each pick
//! looks at only two servers.
//!
//! Cost: up to four passes over the members (weigh, draw, reweigh without
//! the first, draw) and two draws from fastrand's thread-local generator;
//! no allocation or lock.

use std::net::IpAddr;

use super::random::{eligible_weight, weighted_draw};
use super::select::Select;
use super::Member;

/// Power of two random choices by weighted in-flight load.
#[derive(Debug)]
pub struct PowerOfTwo;

/// `a` is strictly less loaded than `b`, comparing `in_flight / weight` by
/// cross multiplication.
fn less_loaded(a: &Member, b: &Member) -> bool {
    let (in_flight_a, weight_a) = (a.state.in_flight() as u128, u128::from(a.weight.max(1)));
    let (in_flight_b, weight_b) = (b.state.in_flight() as u128, u128::from(b.weight.max(1)));
    in_flight_a * weight_b < in_flight_b * weight_a
}

impl Select for PowerOfTwo {
    fn pick(
        &self,
        members: &[Member],
        eligible: &dyn Fn(usize) -> bool,
        _client: IpAddr,
    ) -> Option<usize> {
        let (total, count) = eligible_weight(members, eligible, None);
        let first = weighted_draw(members, eligible, None, total)?;
        if count < 2 {
            return Some(first);
        }
        let (rest, _) = eligible_weight(members, eligible, Some(first));
        let Some(second) = weighted_draw(members, eligible, Some(first), rest) else {
            return Some(first);
        };
        match (members.get(first), members.get(second)) {
            (Some(a), Some(b)) if less_loaded(b, a) => Some(second),
            _ => Some(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::round_robin::tests::{client, members};
    use super::*;

    #[test]
    fn ineligible_member_is_never_picked() {
        let members = members(&[1, 5, 1, 1]);
        for _ in 0..1_000 {
            assert_ne!(PowerOfTwo.pick(&members, &|i| i != 1, client()), Some(1));
        }
    }

    #[test]
    fn less_loaded_of_two_wins() {
        let members = members(&[1, 1]);
        let _held: Vec<_> = (0..3).map(|_| members[0].state.start_request()).collect();
        for _ in 0..100 {
            assert_eq!(PowerOfTwo.pick(&members, &|_| true, client()), Some(1));
        }
    }

    #[test]
    fn busy_server_gets_least_traffic() {
        let members = members(&[1, 1, 1]);
        let _held: Vec<_> = (0..5).map(|_| members[0].state.start_request()).collect();
        let mut counts = [0usize; 3];
        for _ in 0..3_000 {
            counts[PowerOfTwo.pick(&members, &|_| true, client()).unwrap()] += 1;
        }
        println!("p2c with 5 in flight on server 0, 3000 picks: {counts:?}");
        // Server 0 only wins when drawn twice, which two distinct draws
        // never do.
        assert_eq!(counts[0], 0, "{counts:?}");
    }

    #[test]
    fn single_eligible_member_is_returned() {
        let members = members(&[1, 1, 1]);
        let _held: Vec<_> = (0..5).map(|_| members[2].state.start_request()).collect();
        for _ in 0..100 {
            assert_eq!(PowerOfTwo.pick(&members, &|i| i == 2, client()), Some(2));
        }
    }

    #[test]
    fn no_eligible_member_gives_none() {
        let members = members(&[1, 1]);
        assert_eq!(PowerOfTwo.pick(&members, &|_| false, client()), None);
    }
}
