//! What a DELETE does to an object, as kube-apiserver's generic store decides it: `rest.BeforeDelete`
//! (graceful deletion, which among the served kinds only pods have), the garbage collector's
//! `orphan`/`foregroundDeletion` finalizers from the delete options, and `markAsDeleting` for objects
//! that wait on finalizers; plus the namespace registry's own first delete (phase `Terminating`).
//!
//! Pure: [`plan_delete`] gets the stored object, the options and the time, and says what to store.
//! The other half of the rules is the update path: an update that removes the last finalizer deletes
//! the object only when its grace period is over (`deletionGracePeriodSeconds` unset or 0), so a pod
//! in graceful deletion stays until the kubelet's grace-0 delete ([`super::deletes_on_update`]).

use jiff::{SignedDuration, Timestamp, Unit};
use serde_json::{json, Value};

use super::{is_deleting, is_namespaces};
use crate::registry::DeleteOptions;
use crate::resources::ResourceInfo;

/// What a DELETE does.
#[derive(Debug, Clone, PartialEq)]
pub enum Deletion {
    /// Nothing: a graceful deletion that ends no later is under way, or a namespace waits on its finalizers.
    Unchanged,
    /// The object is stored like this and stays: it waits on finalizers or a grace period.
    Mark(Value),
    /// The object goes now.
    Remove,
}

/// What `rest.BeforeDelete` found.
enum Before {
    /// The kind has no graceful deletion, or the object's grace period is already over.
    NotGraceful,
    /// A graceful deletion that ends no later than asked is under way.
    Pending,
    /// The object is (now) in graceful deletion with this many seconds left.
    Graceful(i64),
}

/// Plans a DELETE of the stored object `old` (of the stored resource `res`) at `now`.
pub fn plan_delete(res: &ResourceInfo, old: &Value, opts: &DeleteOptions, now: Timestamp) -> Deletion {
    let mut obj = old.clone();
    if is_namespaces(res) {
        // The namespace registry: the first delete only starts termination.
        if !is_deleting(old) {
            set_meta(&mut obj, "deletionTimestamp", json!(stamp(now)));
            if !obj.get("status").is_some_and(Value::is_object) {
                obj["status"] = json!({});
            }
            obj["status"]["phase"] = json!("Terminating");
            gc_finalizers(res, &mut obj, opts);
            return Deletion::Mark(obj);
        }
        if obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty()) {
            return Deletion::Unchanged;
        }
    }
    let before = before_delete(res, &mut obj, opts, now);
    if matches!(before, Before::Pending) {
        // Finalizers cannot be changed through delete options once graceful deletion started.
        return Deletion::Unchanged;
    }
    gc_finalizers(res, &mut obj, opts);
    let pending_finalizers =
        obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty());
    match before {
        Before::Graceful(grace) if pending_finalizers || grace > 0 => Deletion::Mark(obj),
        Before::NotGraceful if pending_finalizers => {
            mark_as_deleting(&mut obj, now);
            Deletion::Mark(obj)
        }
        _ => Deletion::Remove,
    }
}

/// Whether an update that leaves `new` (the object after the update) over the stored `old` deletes the
/// object: `old` is being deleted, its grace period is over, and `new` has no finalizers left.
pub fn deletes_on_update(res: &ResourceInfo, new: &Value, old: &Value) -> bool {
    let grace = old.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0);
    is_deleting(old) && grace == 0 && !super::has_finalizers(res, new)
}

/// A Kubernetes timestamp (whole seconds, UTC).
fn stamp(t: Timestamp) -> String {
    t.round(Unit::Second).unwrap_or(t).to_string()
}

fn set_meta(obj: &mut Value, field: &str, value: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"][field] = value;
}

fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0)
}

/// Controllers of an object being deleted should stop acting on it: the first deletion request
/// moves the generation (of kinds that have one).
fn bump_generation(obj: &mut Value) {
    let gen = generation(obj);
    if gen > 0 {
        set_meta(obj, "generation", json!(gen + 1));
    }
}

/// `rest.BeforeDelete`: starts or shortens the graceful deletion of a pod.
fn before_delete(res: &ResourceInfo, obj: &mut Value, opts: &DeleteOptions, now: Timestamp) -> Before {
    let current = obj.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
    if current.is_some_and(|g| g < 0) {
        set_meta(obj, "deletionGracePeriodSeconds", json!(1));
    }
    if !(res.group.is_empty() && res.plural == "pods") {
        return Before::NotGraceful;
    }
    if is_deleting(obj) {
        // Only a shorter grace period may be asked for; none (or 0) stored means the period is over.
        let current = current.map(|g| if g < 0 { 1 } else { g }).unwrap_or(0);
        if current == 0 {
            return Before::NotGraceful;
        }
        return match opts.grace_period_seconds {
            Some(asked) if asked < current => {
                let since = obj
                    .pointer("/metadata/deletionTimestamp")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .and_then(|t| t.checked_sub(SignedDuration::from_secs(current)).ok())
                    .unwrap_or(now);
                let at = since.checked_add(SignedDuration::from_secs(asked)).unwrap_or(now);
                set_meta(obj, "deletionTimestamp", json!(stamp(at)));
                set_meta(obj, "deletionGracePeriodSeconds", json!(asked));
                Before::Graceful(asked)
            }
            _ => Before::Pending,
        };
    }
    let grace = pod_grace_period(obj, opts);
    let at = now.checked_add(SignedDuration::from_secs(grace)).unwrap_or(now);
    set_meta(obj, "deletionTimestamp", json!(stamp(at)));
    set_meta(obj, "deletionGracePeriodSeconds", json!(grace));
    bump_generation(obj);
    Before::Graceful(grace)
}

/// The pod strategy's `CheckGracefulDelete`: the asked grace period, else the pod's
/// `terminationGracePeriodSeconds`; 0 for a pod not on a node or already finished.
fn pod_grace_period(pod: &Value, opts: &DeleteOptions) -> i64 {
    let bound = pod.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    if !bound || matches!(phase, "Succeeded" | "Failed") {
        return 0;
    }
    let period = opts
        .grace_period_seconds
        .or_else(|| pod.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
        .unwrap_or(0);
    if period < 0 {
        1
    } else {
        period
    }
}

/// `markAsDeleting`: an object without graceful deletion that waits on finalizers is deleting from
/// now (or from an earlier deletion timestamp), with no grace period left.
fn mark_as_deleting(obj: &mut Value, now: Timestamp) {
    let existing = obj.pointer("/metadata/deletionTimestamp").and_then(Value::as_str).map(String::from);
    if existing.is_none() {
        bump_generation(obj);
    }
    let later = existing.as_deref().and_then(|t| t.parse::<Timestamp>().ok()).is_none_or(|t| t > now);
    if later {
        set_meta(obj, "deletionTimestamp", json!(stamp(now)));
    }
    set_meta(obj, "deletionGracePeriodSeconds", json!(0));
}

/// `deletionFinalizersForGarbageCollection`: the `orphan` and `foregroundDeletion` finalizers as the
/// options (else the finalizers already there) ask. Events are never garbage collected.
fn gc_finalizers(res: &ResourceInfo, obj: &mut Value, opts: &DeleteOptions) {
    if res.plural == "events" {
        return;
    }
    let current: Vec<String> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    let first_gc = current.iter().find(|f| *f == ORPHAN || *f == FOREGROUND).map(String::as_str);
    let (orphan, foreground) = match (opts.orphan_dependents, opts.propagation_policy.as_deref()) {
        (Some(orphan), _) => (orphan, false),
        (None, Some(policy)) => (policy == "Orphan", policy == "Foreground"),
        (None, None) => (first_gc == Some(ORPHAN), first_gc == Some(FOREGROUND)),
    };
    let mut wanted: Vec<String> = current.iter().filter(|f| *f != ORPHAN && *f != FOREGROUND).cloned().collect();
    if orphan {
        wanted.push(ORPHAN.into());
    }
    if foreground {
        wanted.push(FOREGROUND.into());
    }
    let same_set = wanted.iter().all(|f| current.contains(f)) && current.iter().all(|f| wanted.contains(f));
    if same_set {
        return;
    }
    if wanted.is_empty() {
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("finalizers");
        }
    } else {
        set_meta(obj, "finalizers", json!(wanted));
    }
}

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

#[cfg(test)]
mod tests;
