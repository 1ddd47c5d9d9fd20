//! Smooth weighted round robin, the algorithm nginx uses for `balance =
//! "round_robin"`.
//!
//! Every member carries a *current weight*. On each pick every eligible
//! member's current weight grows by its configured weight, the member with
//! the largest current weight wins (ties go to the lowest index), and the
//! winner's current weight drops by the sum of the eligible weights. Over
//! any window of `sum(weights)` picks each member is chosen exactly
//! `weight` times, and the picks are interleaved rather than bunched:
//! weights 3:1 give `a, a, b, a`, not `a, a, a, b`, so a heavy server never
//! takes a burst while a light one idles.
//!
//! Members that are not eligible right now (unhealthy, ejected, already
//! tried) are skipped and keep their current weight, so they resume their
//! place when they come back.
//!
//! Cost: one pass over the members under a mutex held only for that pass
//! (never across an `.await`); no allocation per pick.

use std::net::IpAddr;
use std::sync::Mutex;

use super::select::Select;
use super::Member;

/// Smooth weighted round robin over a pool of fixed size.
#[derive(Debug)]
pub struct SmoothWeighted {
    /// Current weight per member, indexed like the pool's members.
    current: Mutex<Vec<i64>>,
}

impl SmoothWeighted {
    /// State for a pool of `members` servers.
    pub fn new(members: usize) -> Self {
        SmoothWeighted {
            current: Mutex::new(vec![0; members]),
        }
    }
}

impl Select for SmoothWeighted {
    fn pick(
        &self,
        members: &[Member],
        eligible: &dyn Fn(usize) -> bool,
        _client: IpAddr,
    ) -> Option<usize> {
        // A panic elsewhere while holding the lock leaves only counters
        // behind, which are still usable.
        let mut current = match self.current.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // The pool is built with its member count, so this only triggers if
        // a caller passes a different slice; resize once rather than panic.
        if current.len() != members.len() {
            current.resize(members.len(), 0);
        }

        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (i, member) in members.iter().enumerate() {
            if !eligible(i) {
                continue;
            }
            let weight = i64::from(member.weight.max(1));
            current[i] += weight;
            total += weight;
            // Strictly greater: ties keep the lowest index.
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        current[chosen] -= total;
        Some(chosen)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::Arc;

    use super::super::state::{Health, ServerState};
    use super::*;

    /// A pool of healthy members on 10.0.0.1:8001.. with these weights.
    pub(in crate::balance) fn members(weights: &[u32]) -> Vec<Member> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| {
                let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 8001 + i as u16);
                Member {
                    state: Arc::new(ServerState::new("app", addr, Health::Up)),
                    addr,
                    authority: crate::balance::authority(addr),
                    weight,
                    backup: false,
                    serving: None,
                }
            })
            .collect()
    }

    pub(in crate::balance) fn client() -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
    }

    fn counts(
        select: &dyn Select,
        members: &[Member],
        eligible: &dyn Fn(usize) -> bool,
        picks: usize,
    ) -> Vec<usize> {
        let mut counts = vec![0; members.len()];
        for _ in 0..picks {
            counts[select
                .pick(members, eligible, client())
                .expect("an eligible member")] += 1;
        }
        counts
    }

    #[test]
    fn weights_three_to_one_interleave_as_a_a_b_a() {
        let members = members(&[3, 1]);
        let rr = SmoothWeighted::new(members.len());
        let sequence: Vec<usize> = (0..12)
            .map(|_| rr.pick(&members, &|_| true, client()).unwrap())
            .collect();
        assert_eq!(sequence, [0, 0, 1, 0].repeat(3));
    }

    #[test]
    fn shares_follow_weights_exactly() {
        let members = members(&[5, 3, 2]);
        let rr = SmoothWeighted::new(members.len());
        let counts = counts(&rr, &members, &|_| true, 10_000);
        println!("smooth round robin 5:3:2 over 10000 picks: {counts:?}");
        assert_eq!(counts, [5_000, 3_000, 2_000]);
    }

    #[test]
    fn ineligible_member_is_never_picked() {
        let members = members(&[1, 5, 1]);
        let rr = SmoothWeighted::new(members.len());
        let counts = counts(&rr, &members, &|i| i != 1, 1_000);
        assert_eq!(counts, [500, 0, 500]);
    }

    #[test]
    fn no_eligible_member_gives_none() {
        let members = members(&[1, 1]);
        let rr = SmoothWeighted::new(members.len());
        assert_eq!(rr.pick(&members, &|_| false, client()), None);
        assert_eq!(rr.pick(&[], &|_| true, client()), None);
    }

    #[test]
    fn pool_size_mismatch_does_not_panic() {
        let members = members(&[1, 1, 1]);
        let rr = SmoothWeighted::new(1);
        let counts = counts(&rr, &members, &|_| true, 300);
        assert_eq!(counts, [100, 100, 100]);
    }
}
