use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::*;

fn ip(last: u8) -> Allocated {
    Allocated::ClusterIp(IpAddr::V4(Ipv4Addr::new(10, 96, 0, last)))
}

fn svc(name: &str, rev: Revision, values: &[Allocated]) -> LiveService {
    let mut holdings = Holdings::default();
    for v in values {
        match v {
            Allocated::ClusterIp(i) => holdings.ips.insert(*i),
            Allocated::NodePort(p) => holdings.ports.insert(*p),
        };
    }
    LiveService {
        namespace: "default".into(),
        name: name.into(),
        key: format!("/core/services/default/{name}"),
        mod_revision: rev,
        uid: format!("uid-{name}"),
        holdings,
    }
}

fn snap(services: Vec<LiveService>, keys: &[(Allocated, Revision)]) -> Snapshot {
    Snapshot { services, keys: keys.iter().copied().collect() }
}

#[test]
fn a_leak_is_released_on_the_third_consecutive_sighting() {
    let cfg = AllocConfig::default();
    let s = snap(vec![svc("web", 5, &[ip(20)])], &[(ip(20), 5), (ip(30), 7), (Allocated::NodePort(30080), 7)]);
    let first = decide(&s, &cfg, &Leaks::default());
    assert_eq!(first.suspected, [ip(30), Allocated::NodePort(30080)]);
    assert!(first.releases.is_empty() && first.restores.is_empty() && first.problems.is_empty());
    let second = decide(&s, &cfg, &first.leaks);
    assert!(second.releases.is_empty() && second.suspected.is_empty());
    let third = decide(&s, &cfg, &second.leaks);
    assert_eq!(
        third.releases,
        [Release { value: ip(30), key_revision: 7 }, Release { value: Allocated::NodePort(30080), key_revision: 7 }]
    );
    assert!(third.leaks.0.is_empty(), "released values are no longer counted");
}

#[test]
fn a_suspect_that_gets_claimed_starts_over() {
    let cfg = AllocConfig::default();
    let keys = [(ip(30), 7)];
    let first = decide(&snap(vec![], &keys), &cfg, &Leaks::default());
    let second = decide(&snap(vec![], &keys), &cfg, &first.leaks);
    // The Service that was being created shows up: its key is no leak.
    let claimed = decide(&snap(vec![svc("new", 8, &[ip(30)])], &keys), &cfg, &second.leaks);
    assert!(claimed.leaks.0.is_empty() && claimed.releases.is_empty());
    let again = decide(&snap(vec![], &keys), &cfg, &claimed.leaks);
    assert_eq!(again.suspected, [ip(30)], "counting starts again");
    assert!(again.releases.is_empty());
}

#[test]
fn missing_keys_are_restored_and_duplicates_and_out_of_range_reported() {
    let cfg = AllocConfig::default();
    let outside = Allocated::ClusterIp(IpAddr::V4(Ipv4Addr::new(10, 97, 0, 1)));
    let s = snap(
        vec![
            svc("b", 9, &[ip(10), Allocated::NodePort(30080)]),
            svc("a", 4, &[ip(10), Allocated::NodePort(80)]),
            svc("c", 3, &[outside]),
        ],
        &[(Allocated::NodePort(30080), 9)],
    );
    let d = decide(&s, &cfg, &Leaks::default());
    // "a" comes first in namespace/name order, so it is "b" whose IP is the duplicate.
    assert_eq!(
        d.restores,
        [Restore {
            value: ip(10),
            namespace: "default".into(),
            name: "a".into(),
            uid: "uid-a".into(),
            service_key: "/core/services/default/a".into(),
            service_revision: 4
        }]
    );
    let problems: Vec<(ProblemKind, Allocated, &str)> =
        d.problems.iter().map(|p| (p.kind, p.value, p.name.as_str())).collect();
    assert_eq!(
        problems,
        [
            (ProblemKind::OutOfRange, Allocated::NodePort(80), "a"),
            (ProblemKind::Duplicate, ip(10), "b"),
            (ProblemKind::OutOfRange, outside, "c"),
        ]
    );
    assert!(d.releases.is_empty() && d.suspected.is_empty());
}

#[test]
fn an_existing_key_of_an_out_of_range_value_is_not_a_leak() {
    let cfg = AllocConfig::default();
    let outside = Allocated::ClusterIp(IpAddr::V4(Ipv4Addr::new(10, 97, 0, 1)));
    let s = snap(vec![svc("c", 3, &[outside])], &[(outside, 3)]);
    let mut leaks = Leaks::default();
    for _ in 0..SIGHTINGS_BEFORE_RELEASE {
        let d = decide(&s, &cfg, &leaks);
        assert!(d.releases.is_empty() && d.restores.is_empty());
        leaks = d.leaks;
    }
}

fn value() -> impl Strategy<Value = Allocated> {
    prop_oneof![(1u8..12).prop_map(ip), (30000u16..30008).prop_map(Allocated::NodePort)]
}

proptest! {
    /// Whatever the store holds, repeated runs over it never release a claimed value,
    /// restore each unkeyed in-range claimed value once, and release each unclaimed key
    /// exactly on its third sighting.
    #[test]
    fn runs_converge_without_touching_what_services_hold(
        held in proptest::collection::vec(proptest::collection::btree_set(value(), 0..4), 0..5),
        keyed in proptest::collection::btree_set(value(), 0..10),
    ) {
        let cfg = AllocConfig::default();
        let services: Vec<LiveService> = held
            .iter()
            .enumerate()
            .map(|(i, vs)| svc(&format!("s{i}"), i as Revision + 1, &vs.iter().copied().collect::<Vec<_>>()))
            .collect();
        let keys: BTreeMap<Allocated, Revision> = keyed.iter().map(|v| (*v, 100)).collect();
        let s = Snapshot { services, keys };
        let claimed: BTreeSet<Allocated> = held.iter().flatten().copied().collect();
        let mut leaks = Leaks::default();
        for run in 1..=SIGHTINGS_BEFORE_RELEASE + 1 {
            let d = decide(&s, &cfg, &leaks);
            for r in &d.releases {
                prop_assert!(!claimed.contains(&r.value), "released a claimed value {}", r.value);
                prop_assert!(s.keys.contains_key(&r.value));
            }
            let mut restored: Vec<Allocated> = d.restores.iter().map(|r| r.value).collect();
            restored.sort();
            let want: Vec<Allocated> =
                claimed.iter().filter(|v| in_range(&cfg, v) && !s.keys.contains_key(v)).copied().collect();
            prop_assert_eq!(restored, want);
            let unclaimed = keyed.iter().filter(|v| !claimed.contains(v)).count();
            if run == SIGHTINGS_BEFORE_RELEASE {
                prop_assert_eq!(d.releases.len(), unclaimed);
            } else {
                prop_assert!(d.releases.is_empty());
            }
            // Released values are not counted on: were a release not applied, counting would start over.
            leaks = d.leaks;
        }
    }
}
