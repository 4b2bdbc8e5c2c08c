//! What to do with an object whose owners may be gone (upstream attemptToDeleteItem), decided from the
//! verified state of each of its owners. Pure: the caller does the GETs before and the writes after.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::graph::{FINALIZER_FOREGROUND, FINALIZER_ORPHAN};

/// An owner as verified by a live GET.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// It exists (with the referenced uid) and is not waiting for its dependents' deletion.
    Solid,
    /// It does not exist, or exists with another uid.
    Dangling,
    /// It is being deleted in the foreground.
    WaitingForDependentsDeletion,
}

/// A deletion's propagation policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// Delete the dependents after the object.
    Background,
    /// Delete the dependents before the object.
    Foreground,
    /// Keep the dependents.
    Orphan,
}

/// What to do with the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It has no owner references: leave it.
    Nothing,
    /// It keeps a solid owner: only drop the references to owners that are gone or going (by uid).
    RemoveOwnerReferences(Vec<String>),
    /// It has no solid owner left: delete it. `unblock_owners` first makes its own owner references
    /// non-blocking, to break a foreground deletion cycle.
    Delete {
        /// The propagation policy of the delete.
        propagation: Propagation,
        /// Patch `blockOwnerDeletion: false` into its owner references before deleting.
        unblock_owners: bool,
    },
}

/// Decides for an object with `finalizers` whose owner references verified as `owners`.
/// `has_dependents`: the graph knows dependents of it; `dependent_deleting_dependents`: one of those is
/// itself being deleted in the foreground.
pub fn decide(
    finalizers: &[String],
    owners: &[(OwnerReference, OwnerState)],
    has_dependents: bool,
    dependent_deleting_dependents: bool,
) -> Decision {
    if owners.is_empty() {
        return Decision::Nothing;
    }
    let solid = owners.iter().any(|(_, s)| *s == OwnerState::Solid);
    let waiting = owners.iter().any(|(_, s)| *s == OwnerState::WaitingForDependentsDeletion);
    if solid {
        let gone: Vec<String> =
            owners.iter().filter(|(_, s)| *s != OwnerState::Solid).map(|(r, _)| r.uid.clone()).collect();
        return if gone.is_empty() { Decision::Nothing } else { Decision::RemoveOwnerReferences(gone) };
    }
    if waiting && has_dependents {
        // An owner waits for this object, and this object has dependents of its own: delete it in the
        // foreground so the owner waits for the whole tree.
        return Decision::Delete {
            propagation: Propagation::Foreground,
            unblock_owners: dependent_deleting_dependents,
        };
    }
    let propagation = if finalizers.iter().any(|f| f == FINALIZER_ORPHAN) {
        Propagation::Orphan
    } else if finalizers.iter().any(|f| f == FINALIZER_FOREGROUND) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    Decision::Delete { propagation, unblock_owners: false }
}

/// `refs` without the references to `uids`.
pub fn without_owners(refs: &[OwnerReference], uids: &[String]) -> Vec<OwnerReference> {
    refs.iter().filter(|r| !uids.contains(&r.uid)).cloned().collect()
}

/// `refs` with every `blockOwnerDeletion: true` turned to false.
pub fn unblocked(refs: &[OwnerReference]) -> Vec<OwnerReference> {
    refs.iter()
        .cloned()
        .map(|mut r| {
            if r.block_owner_deletion == Some(true) {
                r.block_owner_deletion = Some(false);
            }
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("n-{uid}"),
            uid: uid.into(),
            controller: None,
            block_owner_deletion: Some(true),
        }
    }

    use OwnerState::*;

    #[test]
    fn no_owners_means_nothing() {
        assert_eq!(decide(&[], &[], true, false), Decision::Nothing);
    }

    #[test]
    fn a_solid_owner_keeps_the_object_and_drops_the_rest() {
        assert_eq!(decide(&[], &[(r("a"), Solid)], false, false), Decision::Nothing);
        assert_eq!(
            decide(&[], &[(r("a"), Solid), (r("b"), Dangling), (r("c"), WaitingForDependentsDeletion)], true, false),
            Decision::RemoveOwnerReferences(vec!["b".into(), "c".into()])
        );
    }

    #[test]
    fn without_solid_owners_the_object_is_deleted_with_its_own_policy() {
        let bg = Decision::Delete { propagation: Propagation::Background, unblock_owners: false };
        assert_eq!(decide(&[], &[(r("a"), Dangling)], true, false), bg);
        assert_eq!(decide(&[], &[(r("a"), WaitingForDependentsDeletion)], false, false), bg);
        assert_eq!(
            decide(&["orphan".into()], &[(r("a"), Dangling)], false, false),
            Decision::Delete { propagation: Propagation::Orphan, unblock_owners: false }
        );
        assert_eq!(
            decide(&["foregroundDeletion".into()], &[(r("a"), Dangling)], false, false),
            Decision::Delete { propagation: Propagation::Foreground, unblock_owners: false }
        );
    }

    #[test]
    fn a_waiting_owner_makes_objects_with_dependents_go_in_the_foreground() {
        assert_eq!(
            decide(&[], &[(r("a"), WaitingForDependentsDeletion)], true, false),
            Decision::Delete { propagation: Propagation::Foreground, unblock_owners: false }
        );
        assert_eq!(
            decide(&[], &[(r("a"), WaitingForDependentsDeletion), (r("b"), Dangling)], true, true),
            Decision::Delete { propagation: Propagation::Foreground, unblock_owners: true }
        );
    }

    #[test]
    fn reference_edits() {
        let refs = vec![r("a"), r("b")];
        assert_eq!(without_owners(&refs, &["a".into()]), vec![r("b")]);
        assert!(unblocked(&refs).iter().all(|r| r.block_owner_deletion == Some(false)));
    }
}
