//! Which Events have outlived the TTL, pure: stored Events and the time now in, the keys to
//! delete (with the revision each was judged at) out.
//!
//! An Event's age is counted from its last observation: the newest of
//! `series.lastObservedTime`, `lastTimestamp`, `eventTime` and `metadata.creationTimestamp`
//! (recorders bump one of the first three each time the event recurs, so an event that keeps
//! recurring lives on). kube-apiserver counts from the last write instead (each write renews
//! the Event's etcd lease); the store keeps no write times, and a recorder's write is an
//! observation, so the two agree for Events written by recorders.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::storage::Revision;

/// Where an Event's observation times are.
const OBSERVED_AT: [&str; 4] =
    ["/series/lastObservedTime", "/lastTimestamp", "/eventTime", "/metadata/creationTimestamp"];

/// One stored Event as the sweep reads it.
#[derive(Clone, Debug)]
pub struct StoredEvent<'a> {
    pub key: &'a str,
    pub mod_revision: Revision,
    /// The decoded object; `None` when it does not decode.
    pub object: Option<&'a Value>,
}

/// Delete `key` if it is still at `mod_revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expire {
    pub key: String,
    pub mod_revision: Revision,
}

/// What the sweep decided about a page of Events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub expire: Vec<Expire>,
    /// Events kept because they carry no readable time (they never expire; logged).
    pub undated: Vec<String>,
}

/// The last time the Event was observed: the newest of its readable times.
pub fn last_observation(event: &Value) -> Option<Timestamp> {
    OBSERVED_AT.iter().filter_map(|p| event.pointer(p)?.as_str()?.parse::<Timestamp>().ok()).max()
}

/// The Events whose last observation is more than `ttl` before `now`.
pub fn decide(events: &[StoredEvent<'_>], now: Timestamp, ttl: Duration) -> Decision {
    let mut d = Decision::default();
    for e in events {
        let Some(seen) = e.object.and_then(last_observation) else {
            d.undated.push(e.key.to_string());
            continue;
        };
        if seen < now && now.duration_since(seen).unsigned_abs() > ttl {
            d.expire.push(Expire { key: e.key.to_string(), mod_revision: e.mod_revision });
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    fn event(times: &[(&str, &str)]) -> Value {
        let mut e = json!({"metadata": {"name": "x"}});
        for (field, t) in times {
            match *field {
                "series" => e["series"] = json!({"count": 2, "lastObservedTime": t}),
                "creationTimestamp" => e["metadata"]["creationTimestamp"] = json!(t),
                f => e[f] = json!(t),
            }
        }
        e
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn the_newest_of_the_four_times_counts() {
        let e = event(&[
            ("creationTimestamp", "2025-01-01T00:00:00Z"),
            ("eventTime", "2025-01-01T00:10:00.000000Z"),
            ("lastTimestamp", "2025-01-01T00:05:00Z"),
            ("series", "2025-01-01T00:20:00.123456Z"),
        ]);
        assert_eq!(last_observation(&e), Some(at("2025-01-01T00:20:00.123456Z")));
        let e = event(&[("creationTimestamp", "2025-01-01T02:00:00Z"), ("lastTimestamp", "2025-01-01T01:00:00Z")]);
        assert_eq!(last_observation(&e), Some(at("2025-01-01T02:00:00Z")));
        // Unreadable times are passed over; none readable is none.
        let e = event(&[("creationTimestamp", "yesterday"), ("eventTime", "2025-01-01T00:00:00Z")]);
        assert_eq!(last_observation(&e), Some(at("2025-01-01T00:00:00Z")));
        assert_eq!(last_observation(&json!({"lastTimestamp": 7})), None);
    }

    #[test]
    fn events_older_than_the_ttl_expire_at_the_revision_read() {
        let old = event(&[("creationTimestamp", "2025-01-01T00:00:00Z")]);
        let recurring =
            event(&[("creationTimestamp", "2025-01-01T00:00:00Z"), ("series", "2025-01-01T00:59:00.000000Z")]);
        let exactly = event(&[("lastTimestamp", "2025-01-01T00:30:00Z")]);
        let future = event(&[("eventTime", "2999-01-01T00:00:00.000000Z")]);
        let undated = json!({"metadata": {"name": "u"}});
        let events = [
            StoredEvent { key: "/core/events/ns/old", mod_revision: 4, object: Some(&old) },
            StoredEvent { key: "/core/events/ns/recurring", mod_revision: 5, object: Some(&recurring) },
            StoredEvent { key: "/core/events/ns/exactly", mod_revision: 6, object: Some(&exactly) },
            StoredEvent { key: "/core/events/ns/future", mod_revision: 7, object: Some(&future) },
            StoredEvent { key: "/core/events/ns/undated", mod_revision: 8, object: Some(&undated) },
            StoredEvent { key: "/core/events/ns/garbage", mod_revision: 9, object: None },
        ];
        let d = decide(&events, at("2025-01-01T01:30:00Z"), HOUR);
        assert_eq!(d.expire, vec![Expire { key: "/core/events/ns/old".into(), mod_revision: 4 }]);
        assert_eq!(d.undated, vec!["/core/events/ns/undated".to_string(), "/core/events/ns/garbage".to_string()]);
        // One second later the one observed exactly an hour before expires too.
        let d = decide(&events, at("2025-01-01T01:30:01Z"), HOUR);
        assert_eq!(
            d.expire.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
            ["/core/events/ns/old", "/core/events/ns/exactly"]
        );
    }

    #[test]
    fn a_zero_ttl_expires_everything_observed_before_now() {
        let e = event(&[("creationTimestamp", "2025-01-01T00:00:00Z")]);
        let events = [StoredEvent { key: "k", mod_revision: 1, object: Some(&e) }];
        assert_eq!(decide(&events, at("2025-01-01T00:00:01Z"), Duration::ZERO).expire.len(), 1);
        assert!(decide(&events, at("2025-01-01T00:00:00Z"), Duration::ZERO).expire.is_empty());
    }
}
