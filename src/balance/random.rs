//! Weighted random selection, for `balance = "random"`.
//!
//! Each eligible server is chosen with probability `weight / sum(weights)`
//! of the eligible servers. With no shared counter or lock, many proxies
//! (or threads) picking independently still spread load by weight, which
//! is why it suits large fleets where round robin's shared state does not
//! exist across instances.
//!
//! Cost: two passes over the members (sum the eligible weights, then walk to
//! the drawn point) and one draw from fastrand's thread-local generator; no
//! allocation or lock.

use std::net::IpAddr;

use super::select::Select;
use super::Member;

/// Weighted random choice among the eligible members.
#[derive(Debug)]
pub struct WeightedRandom;

/// Sum of the weights of eligible members other than `skip`, and how many
/// there are.
pub(super) fn eligible_weight(
    members: &[Member],
    eligible: &dyn Fn(usize) -> bool,
    skip: Option<usize>,
) -> (u64, usize) {
    members
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != skip && eligible(i))
        .fold((0, 0), |(total, count), (_, member)| {
            (total + u64::from(member.weight.max(1)), count + 1)
        })
}

/// Draws an eligible member other than `skip` with probability proportional
/// to its weight, given `total` from [`eligible_weight`].
///
/// Eligibility can change between the two passes (a health check lands);
/// if the walk runs out before the drawn point, the last eligible member
/// seen is returned instead, and `None` only if none is eligible any more.
pub(super) fn weighted_draw(
    members: &[Member],
    eligible: &dyn Fn(usize) -> bool,
    skip: Option<usize>,
    total: u64,
) -> Option<usize> {
    if total == 0 {
        return None;
    }
    let mut point = fastrand::u64(0..total);
    let mut last = None;
    for (i, member) in members.iter().enumerate() {
        if Some(i) == skip || !eligible(i) {
            continue;
        }
        let weight = u64::from(member.weight.max(1));
        if point < weight {
            return Some(i);
        }
        point -= weight;
        last = Some(i);
    }
    last
}

impl Select for WeightedRandom {
    fn pick(
        &self,
        members: &[Member],
        eligible: &dyn Fn(usize) -> bool,
        _client: IpAddr,
    ) -> Option<usize> {
        let (total, _) = eligible_weight(members, eligible, None);
        weighted_draw(members, eligible, None, total)
    }
}

#[cfg(test)]
mod tests {
    use super::super::round_robin::tests::{client, members};
    use super::*;

    #[test]
    fn shares_follow_weights() {
        let members = members(&[3, 1]);
        let mut counts = [0usize; 2];
        for _ in 0..10_000 {
            counts[WeightedRandom.pick(&members, &|_| true, client()).unwrap()] += 1;
        }
        println!("random 3:1 over 10000 picks: {counts:?}");
        assert!((7_200..=7_800).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn ineligible_member_is_never_picked() {
        let members = members(&[1, 10, 1]);
        for _ in 0..1_000 {
            assert_ne!(
                WeightedRandom.pick(&members, &|i| i != 1, client()),
                Some(1)
            );
        }
    }

    #[test]
    fn no_eligible_member_gives_none() {
        let members = members(&[1, 1]);
        assert_eq!(WeightedRandom.pick(&members, &|_| false, client()), None);
        assert_eq!(WeightedRandom.pick(&[], &|_| true, client()), None);
    }
}
