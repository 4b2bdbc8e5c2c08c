//! Address ranges as host-local defines them (`subnet`, `rangeStart`, `rangeEnd`, `gateway`), made canonical,
//! and the order host-local hands addresses out in: round-robin from after the last reserved one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why a range is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("Network {0} too small to allocate from")]
    TooSmall(IpNet),
    #[error("Network has host bits set. For a subnet mask of length {prefix} the network address is {network}")]
    HostBits { prefix: u8, network: IpAddr },
    #[error("{what} {ip} not in network {subnet}")]
    Outside { what: &'static str, ip: IpAddr, subnet: IpNet },
    #[error("rangeStart {start} is after rangeEnd {end}")]
    Reversed { start: IpAddr, end: IpAddr },
    #[error("range set mixes IPv4 and IPv6 ({0} and {1})")]
    MixedFamilies(IpNet, IpNet),
    #[error("ranges {0} and {1} overlap")]
    Overlap(String, String),
}

/// One canonical range: every address in `start..=end` lies in `subnet`; `gateway` is never handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    pub start: IpAddr,
    pub end: IpAddr,
    pub gateway: IpAddr,
}

/// A set of ranges one address is taken from.
pub type RangeSet = Vec<Range>;

pub(crate) fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub(crate) fn from_u128(v: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

impl Range {
    /// Fills in the defaults (start `.1`, end the last address or, for IPv4, the one before broadcast,
    /// gateway `.1`) and checks that everything lies in the subnet.
    pub fn canonical(
        subnet: IpNet,
        start: Option<IpAddr>,
        end: Option<IpAddr>,
        gateway: Option<IpAddr>,
    ) -> Result<Range, RangeError> {
        if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
            return Err(RangeError::TooSmall(subnet));
        }
        if subnet.addr() != subnet.network() {
            return Err(RangeError::HostBits { prefix: subnet.prefix_len(), network: subnet.network() });
        }
        let first = from_u128(to_u128(subnet.network()) + 1, subnet.addr());
        let last = match subnet {
            IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.broadcast()) - 1)),
            IpNet::V6(n) => IpAddr::V6(n.broadcast()),
        };
        let inside = |what: &'static str, ip: IpAddr| {
            if subnet.contains(&ip) {
                Ok(ip)
            } else {
                Err(RangeError::Outside { what, ip, subnet })
            }
        };
        let start = start.map(|ip| inside("RangeStart", ip)).transpose()?.unwrap_or(first);
        let end = end.map(|ip| inside("RangeEnd", ip)).transpose()?.unwrap_or(last);
        let gateway = gateway.map(|ip| inside("Gateway", ip)).transpose()?.unwrap_or(first);
        if to_u128(start) > to_u128(end) {
            return Err(RangeError::Reversed { start, end });
        }
        Ok(Range { subnet, start, end, gateway })
    }

    /// Whether `ip` is one this range may hand out (the gateway included: callers skip it).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.start.is_ipv4() && (to_u128(self.start)..=to_u128(self.end)).contains(&to_u128(ip))
    }

    /// How many addresses `start..=end` spans (saturating for an IPv6 /0).
    pub fn size(&self) -> u128 {
        (to_u128(self.end) - to_u128(self.start)).saturating_add(1)
    }

    fn overlaps(&self, other: &Range) -> bool {
        self.contains(other.start) || self.contains(other.end) || other.contains(self.start) || other.contains(self.end)
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Renders a range set as host-local does in its messages (`a-b,c-d`).
pub fn describe(set: &[Range]) -> String {
    set.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",")
}

/// Checks that a set is one family and that no two ranges overlap, within the set and across `sets`.
pub fn validate_sets(sets: &[RangeSet]) -> Result<(), RangeError> {
    for set in sets {
        for pair in set.windows(2) {
            if pair[0].start.is_ipv4() != pair[1].start.is_ipv4() {
                return Err(RangeError::MixedFamilies(pair[0].subnet, pair[1].subnet));
            }
        }
    }
    let all: Vec<&Range> = sets.iter().flatten().collect();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if a.overlaps(b) {
                return Err(RangeError::Overlap(a.to_string(), b.to_string()));
            }
        }
    }
    Ok(())
}

/// The addresses of `set` in host-local's order: from the one after `last_reserved` (if the set holds it)
/// or from the first range's start, through every range once, wrapping around, skipping gateways.
pub fn candidates(set: &[Range], last_reserved: Option<IpAddr>) -> Candidates<'_> {
    let (range, at) = match last_reserved.and_then(|ip| set.iter().position(|r| r.contains(ip)).map(|i| (i, ip))) {
        Some((i, ip)) if ip == set[i].end => ((i + 1) % set.len(), to_u128(set[(i + 1) % set.len()].start)),
        Some((i, ip)) => (i, to_u128(ip) + 1),
        None => (0, set.first().map(|r| to_u128(r.start)).unwrap_or(0)),
    };
    let remaining = set.iter().fold(0u128, |acc, r| acc.saturating_add(r.size()));
    Candidates { set, range, at, remaining }
}

/// Iterator returned by [`candidates`]: each address with the range it belongs to.
pub struct Candidates<'a> {
    set: &'a [Range],
    range: usize,
    at: u128,
    remaining: u128,
}

impl<'a> Iterator for Candidates<'a> {
    type Item = (IpAddr, &'a Range);

    fn next(&mut self) -> Option<Self::Item> {
        while self.remaining > 0 {
            self.remaining -= 1;
            let r = &self.set[self.range];
            let ip = from_u128(self.at, r.start);
            if self.at >= to_u128(r.end) {
                self.range = (self.range + 1) % self.set.len();
                self.at = to_u128(self.set[self.range].start);
            } else {
                self.at += 1;
            }
            if ip != r.gateway {
                return Some((ip, r));
            }
        }
        None
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
    fn fills_host_local_defaults() {
        let r = Range::canonical("10.1.2.0/24".parse().unwrap(), None, None, None).unwrap();
        assert_eq!((r.start, r.end, r.gateway), (ip("10.1.2.1"), ip("10.1.2.254"), ip("10.1.2.1")));
        let r = Range::canonical("fd00::/120".parse().unwrap(), None, None, None).unwrap();
        assert_eq!((r.start, r.end), (ip("fd00::1"), ip("fd00::ff")));
    }

    #[test]
    fn rejects_bad_ranges_with_host_local_words() {
        let e = Range::canonical("10.0.0.0/31".parse().unwrap(), None, None, None).unwrap_err();
        assert_eq!(e.to_string(), "Network 10.0.0.0/31 too small to allocate from");
        let e = Range::canonical("10.0.0.5/24".parse().unwrap(), None, None, None).unwrap_err();
        assert!(e.to_string().contains("network address is 10.0.0.0"), "{e}");
        let e = Range::canonical("10.0.0.0/24".parse().unwrap(), Some(ip("10.0.1.1")), None, None).unwrap_err();
        assert_eq!(e.to_string(), "RangeStart 10.0.1.1 not in network 10.0.0.0/24");
        assert!(
            Range::canonical("10.0.0.0/24".parse().unwrap(), Some(ip("10.0.0.9")), Some(ip("10.0.0.3")), None).is_err()
        );
    }

    #[test]
    fn detects_overlaps_and_mixed_families() {
        let a = Range::canonical("10.0.0.0/24".parse().unwrap(), None, None, None).unwrap();
        let b = Range::canonical("10.0.0.0/25".parse().unwrap(), None, None, None).unwrap();
        let c = Range::canonical("fd00::/64".parse().unwrap(), None, None, None).unwrap();
        assert!(matches!(validate_sets(&[vec![a.clone()], vec![b]]), Err(RangeError::Overlap(..))));
        assert!(matches!(validate_sets(&[vec![a.clone(), c.clone()]]), Err(RangeError::MixedFamilies(..))));
        assert!(validate_sets(&[vec![a], vec![c]]).is_ok());
    }

    #[test]
    fn starts_after_the_last_reserved_address() {
        let r = Range::canonical("10.0.0.0/29".parse().unwrap(), None, None, None).unwrap();
        let set = vec![r];
        let order: Vec<IpAddr> = candidates(&set, None).map(|(ip, _)| ip).collect();
        assert_eq!(order, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(ip));
        let order: Vec<IpAddr> = candidates(&set, Some(ip("10.0.0.4"))).map(|(ip, _)| ip).collect();
        assert_eq!(order, ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"].map(ip));
        // A last-reserved address outside the set (the ranges changed) starts over.
        assert_eq!(candidates(&set, Some(ip("192.168.0.1"))).next().unwrap().0, ip("10.0.0.2"));
    }

    proptest! {
        /// Every address of every range, except the gateways, comes exactly once, whatever the start.
        #[test]
        fn visits_each_address_once(
            a_len in 1u32..40, b_off in 0u32..20, b_len in 1u32..40, gw_off in 0u32..80, last_off in 0u32..120,
        ) {
            let a = Range::canonical("10.0.0.0/24".parse().unwrap(), Some(ip("10.0.0.10")),
                Some(IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 10)) + a_len - 1))),
                Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, (10 + gw_off) as u8)))).unwrap();
            let bstart = u32::from(Ipv4Addr::new(10, 0, 1, 0)) + 1 + b_off;
            let b = Range::canonical("10.0.1.0/24".parse().unwrap(), Some(IpAddr::V4(Ipv4Addr::from(bstart))),
                Some(IpAddr::V4(Ipv4Addr::from(bstart + b_len - 1))), None).unwrap();
            let set = vec![a.clone(), b.clone()];
            let last = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + last_off));
            let got: Vec<IpAddr> = candidates(&set, Some(last)).map(|(ip, _)| ip).collect();
            let mut want: Vec<IpAddr> = set.iter()
                .flat_map(|r| (to_u128(r.start)..=to_u128(r.end)).map(move |v| (from_u128(v, r.start), r.gateway)))
                .filter(|(ip, gw)| ip != gw).map(|(ip, _)| ip).collect();
            let mut sorted = got.clone();
            sorted.sort();
            want.sort();
            prop_assert_eq!(sorted, want);
            if a.contains(last) && last != a.end && IpAddr::V4(Ipv4Addr::from(u32::from(match last { IpAddr::V4(v) => v, _ => unreachable!() }) + 1)) != a.gateway {
                prop_assert_eq!(got[0], from_u128(to_u128(last) + 1, last));
            }
        }
    }
}
