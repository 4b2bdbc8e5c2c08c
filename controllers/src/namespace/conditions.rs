//! The status conditions a terminating Namespace carries so `kubectl describe ns` explains a stuck deletion
//! (upstream deletion/status_condition_utils.go: same types, reasons and messages). Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Discovery of the served resources failed.
pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
/// Parsing a group version failed.
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
/// Deleting some content failed.
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
/// Some content is left.
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
/// Some content waits on finalizers.
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

const TYPES: [&str; 5] =
    [DISCOVERY_FAILURE, GV_PARSING_FAILURE, CONTENT_FAILURE, CONTENT_REMAINING, FINALIZERS_REMAINING];

fn ok_condition(type_: &str) -> (&'static str, &'static str) {
    match type_ {
        DISCOVERY_FAILURE => ("ResourcesDiscovered", "All resources successfully discovered"),
        GV_PARSING_FAILURE => ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
        CONTENT_FAILURE => ("ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
        _ => ("ContentRemoved", "All content successfully removed"),
    }
}

/// What one pass over a namespace's content found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Why discovery failed, if it did.
    pub discovery_error: Option<String>,
    /// Errors deleting or listing content, one per resource.
    pub content_errors: Vec<String>,
    /// Objects left, by resource (`plural.group`, as upstream prints it: `pods.` for the core group).
    pub remaining: BTreeMap<String, usize>,
    /// Objects left, by finalizer they wait on.
    pub finalizers: BTreeMap<String, usize>,
}

/// The failing conditions `outcome` calls for (type, reason, message); the other types are set to their
/// "ok" variant by [`update`].
pub fn failing(outcome: &Outcome) -> Vec<(&'static str, &'static str, String)> {
    let mut out = Vec::new();
    if let Some(e) = &outcome.discovery_error {
        out.push((DISCOVERY_FAILURE, "DiscoveryFailed", e.clone()));
    }
    if !outcome.content_errors.is_empty() {
        let mut msgs = outcome.content_errors.clone();
        msgs.sort();
        out.push((
            CONTENT_FAILURE,
            "ContentDeletionFailed",
            format!("Failed to delete all resource types, {} remaining: {}", msgs.len(), msgs.join(", ")),
        ));
    }
    let remaining: Vec<String> = outcome
        .remaining
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(r, n)| format!("{r} has {n} resource instances"))
        .collect();
    if !remaining.is_empty() {
        out.push((
            CONTENT_REMAINING,
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", remaining.join(", ")),
        ));
    }
    let finalizers: Vec<String> = outcome
        .finalizers
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    if !finalizers.is_empty() {
        out.push((
            FINALIZERS_REMAINING,
            "SomeFinalizerRemain",
            format!("Some finalizers are remaining: {}", finalizers.join(", ")),
        ));
    }
    out
}

/// Updates `conditions` to what `outcome` calls for; returns whether anything changed. A condition's
/// `lastTransitionTime` moves only when its status does.
pub fn update(conditions: &mut Vec<NamespaceCondition>, outcome: &Outcome, now: &Time) -> bool {
    let failing = failing(outcome);
    let mut changed = false;
    for type_ in TYPES {
        let (status, reason, message) = match failing.iter().find(|(t, _, _)| *t == type_) {
            Some((_, reason, message)) => ("True", *reason, message.clone()),
            None => {
                let (reason, message) = ok_condition(type_);
                ("False", reason, message.to_string())
            }
        };
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            None => {
                conditions.push(NamespaceCondition {
                    type_: type_.into(),
                    status: status.into(),
                    reason: Some(reason.into()),
                    message: Some(message),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) => {
                if c.status != status || c.reason.as_deref() != Some(reason) || c.message.as_deref() != Some(&message) {
                    if c.status != status {
                        c.last_transition_time = Some(now.clone());
                    }
                    c.status = status.into();
                    c.reason = Some(reason.into());
                    c.message = Some(message);
                    changed = true;
                }
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    #[test]
    fn messages_read_like_upstream() {
        let o = Outcome {
            discovery_error: None,
            content_errors: vec!["b failed".into(), "a failed".into()],
            remaining: [("pods.".to_string(), 3), ("configmaps.".to_string(), 1), ("x.".to_string(), 0)].into(),
            finalizers: [("foregroundDeletion".to_string(), 2)].into(),
        };
        let f = failing(&o);
        assert_eq!(
            f,
            vec![
                (
                    CONTENT_FAILURE,
                    "ContentDeletionFailed",
                    "Failed to delete all resource types, 2 remaining: a failed, b failed".to_string()
                ),
                (
                    CONTENT_REMAINING,
                    "SomeResourcesRemain",
                    "Some resources are remaining: configmaps. has 1 resource instances, pods. has 3 resource instances"
                        .to_string()
                ),
                (
                    FINALIZERS_REMAINING,
                    "SomeFinalizerRemain",
                    "Some finalizers are remaining: foregroundDeletion in 2 resource instances".to_string()
                ),
            ]
        );
    }

    #[test]
    fn update_sets_every_type_and_reports_changes_only() {
        let mut conds = Vec::new();
        let stuck = Outcome { remaining: [("pods.".to_string(), 1)].into(), ..Default::default() };
        assert!(update(&mut conds, &stuck, &now()));
        assert_eq!(conds.len(), 5);
        let remaining = conds.iter().find(|c| c.type_ == CONTENT_REMAINING).unwrap();
        assert_eq!(remaining.status, "True");
        assert!(!update(&mut conds, &stuck, &now()), "same outcome, no write");
        let later = Time(jiff::Timestamp::from_second(1_700_000_100).unwrap());
        assert!(update(&mut conds, &Outcome::default(), &later));
        let remaining = conds.iter().find(|c| c.type_ == CONTENT_REMAINING).unwrap();
        assert_eq!(remaining.status, "False");
        assert_eq!(remaining.reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(remaining.last_transition_time, Some(later));
        let discovery = conds.iter().find(|c| c.type_ == DISCOVERY_FAILURE).unwrap();
        assert_eq!(discovery.last_transition_time, Some(now()), "unchanged status keeps its transition time");
    }
}
