//! The pod CIDR set of the cluster (upstream nodeipam/ipam/cidrset): the cluster CIDR cut into equal subnets
//! of `node_cidr_mask_size` bits, each free or owned by one Node. Pure, family-agnostic (IPv4 and IPv6).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// The most subnets a cluster CIDR may be cut into (upstream limits the mask difference to 16 bits).
pub const MAX_SUBNET_BITS: u8 = 16;

/// Why a CIDR set cannot be made or a CIDR cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrSetError {
    /// The node mask does not fit the cluster CIDR.
    #[error(
        "node CIDR mask size /{mask} does not fit the cluster CIDR {cluster}: it must be between /{} and /{max}",
        cluster.prefix_len(),
        max = cluster.max_prefix_len()
    )]
    MaskOutOfRange { cluster: IpNet, mask: u8 },
    /// More subnets than the allocator handles.
    #[error(
        "cluster CIDR {cluster} with node CIDR mask size /{mask} makes 2^{} subnets; at most 2^{MAX_SUBNET_BITS} are supported",
        mask - cluster.prefix_len()
    )]
    TooManySubnets { cluster: IpNet, mask: u8 },
    /// The CIDR lies outside the cluster CIDR.
    #[error("CIDR {cidr} is not in the cluster CIDR {cluster}")]
    OutOfRange { cidr: IpNet, cluster: IpNet },
}

/// Who holds a subnet.
pub type Owner = String;

/// The cluster CIDR's subnets and their owners.
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: IpNet,
    mask: u8,
    /// Subnet index → owner.
    owners: BTreeMap<u32, Owner>,
}

fn addr_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl CidrSet {
    /// A set over `cluster` cut into `/mask` subnets, all free.
    pub fn new(cluster: IpNet, mask: u8) -> Result<CidrSet, CidrSetError> {
        let cluster = cluster.trunc();
        if mask < cluster.prefix_len() || mask > cluster.max_prefix_len() {
            return Err(CidrSetError::MaskOutOfRange { cluster, mask });
        }
        if mask - cluster.prefix_len() > MAX_SUBNET_BITS {
            return Err(CidrSetError::TooManySubnets { cluster, mask });
        }
        Ok(CidrSet { cluster, mask, owners: BTreeMap::new() })
    }

    /// The cluster CIDR.
    pub fn cluster(&self) -> IpNet {
        self.cluster
    }

    /// How many subnets there are.
    pub fn capacity(&self) -> u32 {
        1u32 << (self.mask - self.cluster.prefix_len())
    }

    /// How many subnets are owned.
    pub fn used(&self) -> usize {
        self.owners.len()
    }

    fn host_bits(&self) -> u8 {
        self.cluster.max_prefix_len() - self.mask
    }

    /// The subnet with index `i`.
    fn subnet(&self, i: u32) -> IpNet {
        let base = addr_bits(self.cluster.network()) + (u128::from(i) << self.host_bits());
        let ip = match self.cluster {
            IpNet::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(base).unwrap_or(u32::MAX))),
            IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(base)),
        };
        // The prefix is valid by construction (checked in `new`).
        IpNet::new(ip, self.mask).unwrap_or(self.cluster)
    }

    /// The subnet indices `cidr` covers (a CIDR of another size covers one or several).
    fn indices(&self, cidr: IpNet) -> Result<std::ops::RangeInclusive<u32>, CidrSetError> {
        let cidr = cidr.trunc();
        let same_family = matches!((cidr, self.cluster), (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_)));
        if !same_family || !self.cluster.contains(&cidr) {
            return Err(CidrSetError::OutOfRange { cidr, cluster: self.cluster });
        }
        let base = addr_bits(self.cluster.network());
        let shift = self.host_bits();
        let first = (addr_bits(cidr.network()) - base) >> shift;
        let last = (addr_bits(cidr.broadcast()) - base) >> shift;
        let to_u32 = |v: u128| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(to_u32(first)..=to_u32(last))
    }

    /// The owners (other than `owner`) of subnets that `cidr` overlaps.
    pub fn conflicts(&self, cidr: IpNet, owner: &str) -> Result<Vec<Owner>, CidrSetError> {
        let out: std::collections::BTreeSet<Owner> =
            self.owners.range(self.indices(cidr)?).map(|(_, o)| o.clone()).filter(|o| o != owner).collect();
        Ok(out.into_iter().collect())
    }

    /// Marks every subnet `cidr` covers as owned by `owner`, unless one is held by someone else (then nothing
    /// changes and those owners are returned as the error's payload).
    pub fn occupy(&mut self, cidr: IpNet, owner: &str) -> Result<Result<(), Vec<Owner>>, CidrSetError> {
        let range = self.indices(cidr)?;
        let others = self.conflicts(cidr, owner)?;
        if !others.is_empty() {
            return Ok(Err(others));
        }
        for i in range {
            self.owners.insert(i, owner.to_string());
        }
        Ok(Ok(()))
    }

    /// Takes the lowest free subnet for `owner`; `None` when the cluster CIDR is full.
    pub fn allocate(&mut self, owner: &str) -> Option<IpNet> {
        let mut candidate = 0u32;
        for &i in self.owners.keys() {
            if i != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate >= self.capacity() {
            return None;
        }
        self.owners.insert(candidate, owner.to_string());
        Some(self.subnet(candidate))
    }

    /// Frees every subnet `owner` holds; returns whether any was held.
    pub fn release_owner(&mut self, owner: &str) -> bool {
        let before = self.owners.len();
        self.owners.retain(|_, o| o != owner);
        before != self.owners.len()
    }

    /// The subnets `owner` holds, lowest first.
    pub fn owned_by(&self, owner: &str) -> Vec<IpNet> {
        self.owners.iter().filter(|(_, o)| o.as_str() == owner).map(|(i, _)| self.subnet(*i)).collect()
    }

    /// Every owner.
    pub fn owners(&self) -> std::collections::BTreeSet<Owner> {
        self.owners.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_lowest_free_and_reuses_released() {
        let mut s = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(s.capacity(), 256);
        assert_eq!(s.allocate("a"), Some(net("10.244.0.0/24")));
        assert_eq!(s.allocate("b"), Some(net("10.244.1.0/24")));
        assert_eq!(s.allocate("c"), Some(net("10.244.2.0/24")));
        assert!(s.release_owner("b"));
        assert!(!s.release_owner("b"));
        assert_eq!(s.allocate("d"), Some(net("10.244.1.0/24")));
        assert_eq!(s.allocate("e"), Some(net("10.244.3.0/24")));
    }

    #[test]
    fn full_set_allocates_nothing() {
        let mut s = CidrSet::new(net("10.0.0.0/23"), 24).unwrap();
        assert!(s.allocate("a").is_some());
        assert!(s.allocate("b").is_some());
        assert_eq!(s.allocate("c"), None);
    }

    #[test]
    fn occupy_detects_out_of_range_and_conflicts() {
        let mut s = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(s.occupy(net("10.244.5.0/24"), "a"), Ok(Ok(())));
        assert_eq!(s.occupy(net("10.244.5.0/24"), "a"), Ok(Ok(())), "occupying again is idempotent");
        assert_eq!(s.occupy(net("10.244.5.0/24"), "b"), Ok(Err(vec!["a".to_string()])));
        assert_eq!(s.occupy(net("10.244.4.0/23"), "b"), Ok(Err(vec!["a".to_string()])), "a wider CIDR overlaps");
        assert!(matches!(s.occupy(net("10.1.0.0/24"), "c"), Err(CidrSetError::OutOfRange { .. })));
        assert!(matches!(s.occupy(net("fd00::/64"), "c"), Err(CidrSetError::OutOfRange { .. })));
        assert_eq!(s.allocate("d"), Some(net("10.244.0.0/24")));
        assert_eq!(s.owned_by("a"), vec![net("10.244.5.0/24")]);
    }

    #[test]
    fn a_narrower_cidr_occupies_its_subnet() {
        let mut s = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(s.occupy(net("10.244.0.128/25"), "a"), Ok(Ok(())));
        assert_eq!(s.allocate("b"), Some(net("10.244.1.0/24")));
    }

    #[test]
    fn ipv6_and_bad_masks() {
        let mut s = CidrSet::new(net("fd00:10::/56"), 64).unwrap();
        assert_eq!(s.allocate("a"), Some(net("fd00:10::/64")));
        assert_eq!(s.allocate("b"), Some(net("fd00:10:0:1::/64")));
        assert!(matches!(CidrSet::new(net("10.0.0.0/16"), 8), Err(CidrSetError::MaskOutOfRange { .. })));
        assert!(matches!(CidrSet::new(net("10.0.0.0/16"), 33), Err(CidrSetError::MaskOutOfRange { .. })));
        assert!(matches!(CidrSet::new(net("10.0.0.0/8"), 30), Err(CidrSetError::TooManySubnets { .. })));
        let e = CidrSet::new(net("10.0.0.0/16"), 8).unwrap_err().to_string();
        assert!(e.contains("between /16 and /32"), "{e}");
    }

    proptest! {
        /// Whatever the sequence of allocations and releases, no subnet has two owners, every allocation is
        /// the lowest free subnet, and the allocated subnets lie in the cluster CIDR.
        #[test]
        fn allocations_are_distinct_and_lowest(ops in proptest::collection::vec((any::<bool>(), 0u8..40), 1..200)) {
            let cluster = net("10.244.0.0/18");
            let mut s = CidrSet::new(cluster, 24).unwrap();
            let mut held: BTreeMap<String, IpNet> = BTreeMap::new();
            for (alloc, who) in ops {
                let owner = format!("n{who}");
                if alloc && !held.contains_key(&owner) {
                    let lowest_free = (0..s.capacity()).map(|i| s.subnet(i)).find(|c| !held.values().any(|h| h == c));
                    let got = s.allocate(&owner);
                    prop_assert_eq!(got, lowest_free);
                    if let Some(c) = got {
                        prop_assert!(cluster.contains(&c));
                        held.insert(owner, c);
                    }
                } else if !alloc {
                    prop_assert_eq!(s.release_owner(&owner), held.remove(&owner).is_some());
                }
                let distinct: std::collections::BTreeSet<_> = held.values().collect();
                prop_assert_eq!(distinct.len(), held.len());
                prop_assert_eq!(s.used(), held.len());
            }
        }
    }
}
