//! The LoadBalancer address pool (`--load-balancer-ip-pool`): ranges `A-B`, CIDRs or single addresses, IPv4
//! and IPv6. Every address of a CIDR is used, as MetalLB does by default. Pure.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why the pool flag does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// An entry is neither a range, a CIDR nor an address.
    #[error("--load-balancer-ip-pool: {0:?} is not a range A-B, a CIDR or an IP address")]
    Unparsable(String),
    /// A range mixes families or runs backwards.
    #[error("--load-balancer-ip-pool: range {0:?} must go from a lower to a higher address of one IP family")]
    BadRange(String),
}

/// The IP family of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of `ip`.
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// The family a Service's `spec.ipFamilies` entry names ("IPv4" / "IPv6").
    pub fn from_name(name: &str) -> Option<Family> {
        match name {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        }
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_bits(family: Family, v: u128) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX))),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// One inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    first: IpAddr,
    last: IpAddr,
}

/// The configured addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    ranges: Vec<Range>,
    text: Vec<String>,
}

impl Pool {
    /// Parses the flag's entries (already split at commas; blanks are skipped).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Pool, PoolError> {
        let mut pool = Pool::default();
        for e in entries {
            let e = e.as_ref().trim();
            if e.is_empty() {
                continue;
            }
            let range = if let Some((a, b)) = e.split_once('-') {
                let (Ok(first), Ok(last)) = (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()) else {
                    return Err(PoolError::Unparsable(e.to_string()));
                };
                if Family::of(&first) != Family::of(&last) || bits(first) > bits(last) {
                    return Err(PoolError::BadRange(e.to_string()));
                }
                Range { first, last }
            } else if let Ok(net) = e.parse::<IpNet>() {
                Range { first: net.network(), last: net.broadcast() }
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                Range { first: ip, last: ip }
            } else {
                return Err(PoolError::Unparsable(e.to_string()));
            };
            pool.ranges.push(range);
            pool.text.push(e.to_string());
        }
        Ok(pool)
    }

    /// Whether no address is configured.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `ip` is in the pool.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.ranges
            .iter()
            .any(|r| Family::of(&r.first) == Family::of(ip) && bits(r.first) <= bits(*ip) && bits(*ip) <= bits(r.last))
    }

    /// Whether the pool has addresses of `family`.
    pub fn has_family(&self, family: Family) -> bool {
        self.ranges.iter().any(|r| Family::of(&r.first) == family)
    }

    /// The first address of `family` not in `taken`: ranges in the order configured, each from its lowest
    /// address.
    pub fn first_free(&self, family: Family, taken: &BTreeSet<IpAddr>) -> Option<IpAddr> {
        for r in self.ranges.iter().filter(|r| Family::of(&r.first) == family) {
            let mut candidate = bits(r.first);
            for t in taken.range(r.first..=r.last) {
                let t = bits(*t);
                if t == candidate {
                    candidate += 1;
                } else if t > candidate {
                    break;
                }
            }
            if candidate <= bits(r.last) {
                return Some(from_bits(family, candidate));
            }
        }
        None
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_ranges_cidrs_and_addresses() {
        let p =
            Pool::parse(&["192.168.56.240-192.168.56.241", " 10.0.0.8/30", "10.9.9.9", "", "fd00::1-fd00::2"]).unwrap();
        assert_eq!(p.to_string(), "192.168.56.240-192.168.56.241,10.0.0.8/30,10.9.9.9,fd00::1-fd00::2");
        assert!(p.contains(&ip("192.168.56.241")));
        assert!(!p.contains(&ip("192.168.56.242")));
        assert!(p.contains(&ip("10.0.0.8")) && p.contains(&ip("10.0.0.11")) && !p.contains(&ip("10.0.0.12")));
        assert!(p.contains(&ip("10.9.9.9")));
        assert!(p.contains(&ip("fd00::2")) && !p.contains(&ip("fd00::3")));
        assert!(p.has_family(Family::V6));
        assert!(Pool::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_entries_clearly() {
        assert_eq!(Pool::parse(&["nope"]), Err(PoolError::Unparsable("nope".into())));
        assert_eq!(Pool::parse(&["10.0.0.5-10.0.0.1"]), Err(PoolError::BadRange("10.0.0.5-10.0.0.1".into())));
        assert_eq!(Pool::parse(&["10.0.0.1-fd00::1"]), Err(PoolError::BadRange("10.0.0.1-fd00::1".into())));
        assert!(PoolError::Unparsable("x".into()).to_string().contains("--load-balancer-ip-pool"));
    }

    #[test]
    fn first_free_skips_taken_and_follows_range_order() {
        let p = Pool::parse(&["10.0.0.1-10.0.0.3", "10.0.1.0/31"]).unwrap();
        let mut taken = BTreeSet::new();
        assert_eq!(p.first_free(Family::V4, &taken), Some(ip("10.0.0.1")));
        taken.insert(ip("10.0.0.1"));
        taken.insert(ip("10.0.0.3"));
        assert_eq!(p.first_free(Family::V4, &taken), Some(ip("10.0.0.2")));
        taken.insert(ip("10.0.0.2"));
        assert_eq!(p.first_free(Family::V4, &taken), Some(ip("10.0.1.0")));
        taken.insert(ip("10.0.1.0"));
        taken.insert(ip("10.0.1.1"));
        assert_eq!(p.first_free(Family::V4, &taken), None);
        assert_eq!(p.first_free(Family::V6, &BTreeSet::new()), None);
    }

    proptest! {
        /// The first free address is in the pool, not taken, and no lower free address of the same range
        /// exists.
        #[test]
        fn first_free_is_the_lowest_free(taken in proptest::collection::btree_set(0u8..20, 0..20)) {
            let p = Pool::parse(&["10.0.0.0-10.0.0.15"]).unwrap();
            let taken: BTreeSet<IpAddr> = taken.into_iter().map(|n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))).collect();
            let expected = (0u8..16).map(|n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))).find(|a| !taken.contains(a));
            prop_assert_eq!(p.first_free(Family::V4, &taken), expected);
        }
    }
}
