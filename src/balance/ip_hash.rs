//! Client affinity by weighted rendezvous hashing (highest random weight),
//! for `balance = "ip_hash"`.
//!
//! Each (client ip, server address) pair gets a pseudo-random 64-bit hash,
//! turned into a uniform `u` in (0, 1) and a score `weight / -ln(u)`; the
//! eligible server with the highest score takes the client. This gives:
//!
//! * the same client reaches the same server for as long as the eligible
//!   set is unchanged, with no shared state or table to rebuild;
//! * when a server leaves (down, ejected, removed by a reload), only the
//!   clients that were on it move, about 1/N of them, spread over the rest;
//!   everyone else stays put. A modulo hash would reshuffle nearly all;
//! * shares proportional to weight (the `-ln(u)` form makes each server's
//!   win probability exactly `weight / sum(weights)`).
//!
//! The hash is keyed by the server's address rather than its index, so
//! reordering the config does not move clients. It is a fixed function
//! (splitmix64 mixing), so affinity also survives restarts.
//!
//! Cost: one hash and one `ln` per eligible server; no allocation or lock.

use std::net::{IpAddr, SocketAddr};

use super::select::Select;
use super::Member;

/// Weighted rendezvous hashing on the client address.
#[derive(Debug)]
pub struct Rendezvous;

/// The splitmix64 finalizer: a bijection on u64 with full avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Folds one word into a running hash.
fn absorb(hash: u64, word: u64) -> u64 {
    mix(hash.wrapping_add(word).wrapping_add(0x9e37_79b9_7f4a_7c15))
}

/// Hash of an address; IPv4-mapped IPv6 hashes like the IPv4 address.
fn hash_ip(hash: u64, ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => absorb(absorb(hash, 4), u64::from(u32::from(v4))),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            absorb(absorb(absorb(hash, 6), (bits >> 64) as u64), bits as u64)
        }
    }
}

fn hash_server(hash: u64, addr: SocketAddr) -> u64 {
    absorb(hash_ip(hash, addr.ip()), u64::from(addr.port()))
}

/// `weight / -ln(u)` with `u` uniform in (0, 1) drawn from `hash`.
fn score(hash: u64, weight: u32) -> f64 {
    // 53 bits fill an f64 mantissa exactly; the half step keeps u off 0
    // and below 1, so -ln(u) is finite and positive.
    let u = ((hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(weight.max(1)) / -u.ln()
}

impl Select for Rendezvous {
    fn pick(
        &self,
        members: &[Member],
        eligible: &dyn Fn(usize) -> bool,
        client: IpAddr,
    ) -> Option<usize> {
        let client_hash = hash_ip(0, client);
        let mut best: Option<(usize, f64)> = None;
        for (i, member) in members.iter().enumerate() {
            if !eligible(i) {
                continue;
            }
            let candidate = score(hash_server(client_hash, member.addr), member.weight);
            // Strictly greater: an exact tie keeps the lowest index.
            if best.is_none_or(|(_, top)| candidate > top) {
                best = Some((i, candidate));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::round_robin::tests::members;
    use super::*;

    fn nth_client(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
    }

    #[test]
    fn same_client_reaches_same_server() {
        let members = members(&[1, 1, 1, 1]);
        for n in 0..50 {
            let first = Rendezvous.pick(&members, &|_| true, nth_client(n));
            assert!(first.is_some());
            for _ in 0..20 {
                assert_eq!(Rendezvous.pick(&members, &|_| true, nth_client(n)), first);
            }
        }
    }

    #[test]
    fn clients_spread_evenly_over_equal_servers() {
        let members = members(&[1, 1, 1, 1]);
        let mut counts = [0usize; 4];
        for n in 0..1_000 {
            counts[Rendezvous.pick(&members, &|_| true, nth_client(n)).unwrap()] += 1;
        }
        println!("ip_hash 1000 clients over 4 equal servers: {counts:?}");
        assert!(counts.iter().all(|c| (190..=310).contains(c)), "{counts:?}");
    }

    #[test]
    fn losing_a_server_moves_only_its_clients() {
        let members = members(&[1, 1, 1, 1]);
        let (mut moved, mut removed_had) = (0, 0);
        for n in 0..1_000 {
            let before = Rendezvous.pick(&members, &|_| true, nth_client(n)).unwrap();
            let after = Rendezvous
                .pick(&members, &|i| i != 2, nth_client(n))
                .unwrap();
            assert_ne!(after, 2);
            if before == 2 {
                removed_had += 1;
            }
            if before != after {
                assert_eq!(before, 2, "client {n} moved from a server that stayed");
                moved += 1;
            }
        }
        println!(
            "ip_hash removing 1 of 4: {moved}/1000 clients moved, removed server had {removed_had}"
        );
        assert_eq!(moved, removed_had);
        assert!(moved <= 300, "{moved}");
    }

    #[test]
    fn shares_follow_weights() {
        let members = members(&[3, 1]);
        let mut counts = [0usize; 2];
        for n in 0..10_000 {
            counts[Rendezvous.pick(&members, &|_| true, nth_client(n)).unwrap()] += 1;
        }
        println!("ip_hash 3:1 over 10000 clients: {counts:?}");
        assert!((7_000..=8_000).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn ipv4_mapped_client_matches_ipv4() {
        let members = members(&[1, 1, 1, 1]);
        for n in 0..50 {
            let IpAddr::V4(v4) = nth_client(n) else {
                unreachable!()
            };
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            assert_eq!(
                Rendezvous.pick(&members, &|_| true, mapped),
                Rendezvous.pick(&members, &|_| true, nth_client(n))
            );
        }
    }

    #[test]
    fn no_eligible_member_gives_none() {
        let members = members(&[1, 1]);
        assert_eq!(Rendezvous.pick(&members, &|_| false, nth_client(1)), None);
    }
}
