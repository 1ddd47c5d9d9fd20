//! The interface every selection algorithm implements, and the factory
//! that builds one from `balance = "..."`.
//!
//! An algorithm sees the pool's members and a filter saying which are
//! eligible right now (healthy, not ejected, breaker closed, not draining,
//! not already tried by this request). It must pick an eligible member and
//! must not allocate per call.

use std::net::IpAddr;

use super::Member;
use crate::config::Balance;

/// A selection algorithm.
pub trait Select: Send + Sync + std::fmt::Debug {
    /// Index into `members` of the chosen server, or `None` when no member
    /// is eligible. `client` is the real client address (ip_hash uses it).
    fn pick(
        &self,
        members: &[Member],
        eligible: &dyn Fn(usize) -> bool,
        client: IpAddr,
    ) -> Option<usize>;
}

/// Builds the algorithm for a pool.
pub fn build(balance: Balance, members: &[Member]) -> Box<dyn Select> {
    match balance {
        Balance::RoundRobin => Box::new(super::round_robin::SmoothWeighted::new(members.len())),
        Balance::LeastConn => Box::new(super::least_conn::LeastConn::new(members.len())),
        Balance::IpHash => Box::new(super::ip_hash::Rendezvous),
        Balance::P2c => Box::new(super::p2c::PowerOfTwo),
        Balance::Random => Box::new(super::random::WeightedRandom),
    }
}
