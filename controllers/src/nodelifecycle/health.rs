//! Node health as upstream's node lifecycle controller judges it: a Node is heard from when its Ready
//! condition's `lastHeartbeatTime` changes or its Lease's `renewTime` advances, measured by this process's
//! own clock (the "probe timestamp"), so clock skew between nodes and controller does not matter. A Node not
//! heard from for the grace period gets its conditions set to Unknown. Pure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::runtime::conditions::node_condition;

/// The conditions the controller sets to Unknown when a node goes silent (upstream's list).
pub const MONITORED_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

#[derive(Clone, Debug, PartialEq)]
struct Record {
    probe: Instant,
    ready_heartbeat: Option<Time>,
    lease_renew: Option<jiff::Timestamp>,
}

/// When each Node was last heard from.
#[derive(Debug, Default)]
pub struct HealthTracker {
    records: HashMap<String, Record>,
}

impl HealthTracker {
    /// Records what `node` and its lease's `renewTime` show now; returns when the node was last heard from.
    pub fn observe(&mut self, node: &Node, lease_renew: Option<jiff::Timestamp>, now: Instant) -> Instant {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready_heartbeat = node_condition(node, "Ready").and_then(|c| c.last_heartbeat_time.clone());
        let rec = self.records.entry(name).or_insert_with(|| Record {
            probe: now,
            ready_heartbeat: ready_heartbeat.clone(),
            lease_renew,
        });
        if rec.ready_heartbeat != ready_heartbeat {
            rec.ready_heartbeat = ready_heartbeat;
            rec.probe = now;
        }
        if lease_renew.is_some() && (rec.lease_renew.is_none() || rec.lease_renew < lease_renew) {
            rec.lease_renew = lease_renew;
            rec.probe = now;
        }
        rec.probe
    }

    /// Forgets a deleted node.
    pub fn forget(&mut self, name: &str) {
        self.records.remove(name);
    }
}

/// The grace period for `node`: the startup one until it has ever posted a Ready condition.
pub fn grace_period(node: &Node, monitor: Duration, startup: Duration) -> Duration {
    if node_condition(node, "Ready").is_some() {
        monitor
    } else {
        startup
    }
}

/// The conditions of a node that went silent: each monitored condition set to Unknown (added if missing).
/// `None` when they already are.
pub fn silent_conditions(node: &Node, now: &Time) -> Option<Vec<NodeCondition>> {
    let mut conds = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let mut changed = false;
    for type_ in MONITORED_CONDITIONS {
        match conds.iter_mut().find(|c| c.type_ == type_) {
            None => {
                conds.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(now.clone());
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(conds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeStatus;

    fn ts(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    fn node(ready: Option<(&str, i64)>) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some("n1".into());
        n.metadata.creation_timestamp = Some(ts(100));
        n.status = Some(NodeStatus {
            conditions: ready.map(|(s, hb)| {
                vec![NodeCondition {
                    type_: "Ready".into(),
                    status: s.into(),
                    reason: Some("KubeletReady".into()),
                    last_heartbeat_time: Some(ts(hb)),
                    last_transition_time: Some(ts(hb)),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        });
        n
    }

    #[test]
    fn heard_from_on_heartbeat_change_or_lease_renewal_only() {
        let mut h = HealthTracker::default();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let n = node(Some(("True", 1000)));
        let lease = |s: i64| Some(jiff::Timestamp::from_second(s).unwrap());
        assert_eq!(h.observe(&n, lease(5), t0), t0);
        assert_eq!(h.observe(&n, lease(5), t0 + s), t0, "nothing new");
        assert_eq!(h.observe(&n, lease(6), t0 + 2 * s), t0 + 2 * s, "lease renewed");
        assert_eq!(h.observe(&n, lease(4), t0 + 3 * s), t0 + 2 * s, "an older lease is no news");
        assert_eq!(h.observe(&node(Some(("True", 1001))), lease(6), t0 + 4 * s), t0 + 4 * s, "new heartbeat");
        h.forget("n1");
        assert_eq!(h.observe(&n, lease(6), t0 + 5 * s), t0 + 5 * s);
    }

    #[test]
    fn silent_nodes_get_unknown_conditions_once() {
        let now = ts(2000);
        let n = node(Some(("True", 1000)));
        let conds = silent_conditions(&n, &now).unwrap();
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(ready.message.as_deref(), Some("Kubelet stopped posting node status."));
        assert_eq!(ready.last_heartbeat_time, Some(ts(1000)), "the heartbeat is the kubelet's, kept");
        assert_eq!(ready.last_transition_time, Some(now.clone()));
        let mem = conds.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(mem.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(conds.len(), 4);
        let mut again = n.clone();
        again.status.as_mut().unwrap().conditions = Some(conds);
        assert_eq!(silent_conditions(&again, &now), None);
    }

    #[test]
    fn startup_grace_until_the_first_status() {
        let m = Duration::from_secs(40);
        let s = Duration::from_secs(60);
        assert_eq!(grace_period(&node(None), m, s), s);
        assert_eq!(grace_period(&node(Some(("True", 1))), m, s), m);
    }
}
