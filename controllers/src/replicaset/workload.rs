//! The two kinds the replica controller manages — apps/v1 ReplicaSet and v1 ReplicationController — seen
//! through one trait (upstream runs the ReplicaSet controller on RCs through conversion adapters), and the
//! status both report, in one form.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    PodTemplateSpec, ReplicationController, ReplicationControllerCondition, ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::NamespaceResourceScope;
use knet_apimachinery::labels::{self, LabelSelectorError, Selector};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::context::Informers;
use crate::runtime::Informer;

/// A condition of a ReplicaSet or RC (both kinds have the same fields).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Condition {
    /// `ReplicaFailure` is the only type the controller sets.
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// One word, CamelCase.
    pub reason: Option<String>,
    /// For humans.
    pub message: Option<String>,
    /// When the status last changed.
    pub last_transition_time: Option<Time>,
}

/// The status the controller computes, common to both kinds. Counts are plain numbers; zero is written as
/// an absent field, as Go's `omitempty` does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaStatus {
    /// Active pods the controller owns.
    pub replicas: i32,
    /// Those whose labels match the template's.
    pub fully_labeled_replicas: i32,
    /// Those that are Ready.
    pub ready_replicas: i32,
    /// Those ready for at least `minReadySeconds`.
    pub available_replicas: i32,
    /// Pods being deleted (ReplicaSets only; `None` for RCs).
    pub terminating_replicas: Option<i32>,
    /// The generation this status describes.
    pub observed_generation: i64,
    /// Conditions (`ReplicaFailure`).
    pub conditions: Vec<Condition>,
}

fn nonzero<T: Default + PartialEq>(v: T) -> Option<T> {
    (v != T::default()).then_some(v)
}

/// What the replica controller needs from the object it manages.
pub trait ReplicaController:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Upstream's name for the controller (event source, logs, metrics).
    const CONTROLLER_NAME: &'static str;

    /// The shared informer of this kind.
    fn informer(informers: &Informers) -> &Informer<Self>;
    /// The pods it selects.
    fn selector(&self) -> Result<Selector, LabelSelectorError>;
    /// `spec.replicas` (1 when unset, as defaulted).
    fn desired_replicas(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// The current status in the common form.
    fn replica_status(&self) -> ReplicaStatus;
    /// Replaces the status.
    fn set_replica_status(&mut self, status: ReplicaStatus);
    /// Whether terminating pods are reported.
    fn reports_terminating() -> bool;
}

/// The accessors both kinds implement alike: their spec and status have the same fields under other type
/// names (`$status`, `$condition`); `$terminating` names the status field of terminating pods, for the kind
/// that has one.
macro_rules! replica_accessors {
    ($status:ident, $condition:ident $(, $terminating:ident)?) => {
        fn desired_replicas(&self) -> i32 {
            self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        }

        fn min_ready_seconds(&self) -> i32 {
            self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
        }

        fn template(&self) -> Option<&PodTemplateSpec> {
            self.spec.as_ref()?.template.as_ref()
        }

        fn replica_status(&self) -> ReplicaStatus {
            let s = self.status.clone().unwrap_or_default();
            ReplicaStatus {
                replicas: s.replicas,
                fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
                ready_replicas: s.ready_replicas.unwrap_or(0),
                available_replicas: s.available_replicas.unwrap_or(0),
                terminating_replicas: replica_accessors!(@terminating s $($terminating)?),
                observed_generation: s.observed_generation.unwrap_or(0),
                conditions: s
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| replica_accessors!(@condition Condition, c))
                    .collect(),
            }
        }

        fn set_replica_status(&mut self, s: ReplicaStatus) {
            self.status = Some($status {
                replicas: s.replicas,
                fully_labeled_replicas: nonzero(s.fully_labeled_replicas),
                ready_replicas: nonzero(s.ready_replicas),
                available_replicas: nonzero(s.available_replicas),
                $($terminating: s.terminating_replicas,)?
                observed_generation: nonzero(s.observed_generation),
                conditions: nonzero(
                    s.conditions
                        .into_iter()
                        .map(|c| replica_accessors!(@condition $condition, c))
                        .collect(),
                ),
            });
        }
    };
    // A condition as `$to`: the condition types of both kinds and `Condition` have the same fields.
    (@condition $to:ident, $c:ident) => {
        $to {
            type_: $c.type_,
            status: $c.status,
            reason: $c.reason,
            message: $c.message,
            last_transition_time: $c.last_transition_time,
        }
    };
    (@terminating $s:ident) => {
        None
    };
    (@terminating $s:ident $terminating:ident) => {
        $s.$terminating
    };
}

impl ReplicaController for ReplicaSet {
    const CONTROLLER_NAME: &'static str = "replicaset-controller";

    fn informer(informers: &Informers) -> &Informer<Self> {
        &informers.replica_sets
    }

    fn selector(&self) -> Result<Selector, LabelSelectorError> {
        labels::from_optional_label_selector(self.spec.as_ref().map(|s| &s.selector))
    }

    fn reports_terminating() -> bool {
        true
    }

    replica_accessors!(ReplicaSetStatus, ReplicaSetCondition, terminating_replicas);
}

impl ReplicaController for ReplicationController {
    const CONTROLLER_NAME: &'static str = "replication-controller";

    fn informer(informers: &Informers) -> &Informer<Self> {
        &informers.replication_controllers
    }

    fn selector(&self) -> Result<Selector, LabelSelectorError> {
        // An RC's selector is a plain map; an empty one selects nothing here (validation requires one and
        // defaulting copies the template's labels into it).
        match self.spec.as_ref().and_then(|s| s.selector.as_ref()).filter(|s| !s.is_empty()) {
            Some(set) => Ok(Selector::from_set(set)),
            None => Ok(Selector::nothing()),
        }
    }

    fn reports_terminating() -> bool {
        false
    }

    replica_accessors!(ReplicationControllerStatus, ReplicationControllerCondition);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::ReplicationControllerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    #[test]
    fn status_round_trips_and_zero_is_omitted() {
        let st = ReplicaStatus {
            replicas: 3,
            fully_labeled_replicas: 3,
            ready_replicas: 2,
            available_replicas: 0,
            terminating_replicas: Some(0),
            observed_generation: 4,
            conditions: vec![Condition { type_: "ReplicaFailure".into(), status: "True".into(), ..Default::default() }],
        };
        let mut rs = ReplicaSet::default();
        rs.set_replica_status(st.clone());
        assert_eq!(rs.status.as_ref().unwrap().available_replicas, None);
        assert_eq!(rs.replica_status(), st);
        let mut rc = ReplicationController::default();
        rc.set_replica_status(st.clone());
        assert_eq!(rc.replica_status(), ReplicaStatus { terminating_replicas: None, ..st });
    }

    #[test]
    fn selectors_of_both_kinds() {
        let mut rc = ReplicationController::default();
        assert!(rc.selector().unwrap().is_nothing());
        rc.spec = Some(ReplicationControllerSpec {
            selector: Some([("app".to_string(), "nginx".to_string())].into()),
            ..Default::default()
        });
        let sel = rc.selector().unwrap();
        assert!(sel.matches(&[("app".to_string(), "nginx".to_string())].into()));
        assert_eq!(rc.desired_replicas(), 1);
        let rs = ReplicaSet {
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                selector: LabelSelector {
                    match_labels: Some([("app".to_string(), "web".to_string())].into()),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(rs.desired_replicas(), 0);
        assert!(!rs.selector().unwrap().matches(&[("app".to_string(), "db".to_string())].into()));
    }
}
