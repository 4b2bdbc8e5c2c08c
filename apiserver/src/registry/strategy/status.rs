//! What a `/status` write may change, per kind (kube-apiserver's `*StatusStrategy.PrepareForUpdate`),
//! and a namespace's `/finalize` (`namespaceFinalizeStrategy`).
//!
//! A status write keeps the stored spec (everything but metadata and status). Metadata other than
//! the system fields stays the client's to change, except where the kind's strategy says otherwise:
//! pods keep their ownerReferences (old kubelets corrupted them), Deployments their labels. None of
//! the served kinds resets all metadata (`metav1.ResetObjectMetaForStatus`); that is for newer kinds.

use serde_json::{Map, Value};

use super::spec_part;
use crate::resources::ResourceInfo;

/// Prepares a `/status` update of `new` over the stored `old` (system metadata is already kept).
pub(super) fn prepare_status(res: &ResourceInfo, new: &mut Value, old: &Value) {
    keep_spec(new, old);
    match (res.group, res.plural) {
        ("", "pods") => {
            keep_metadata(new, old, "ownerReferences");
            backfill_qos_class(new, old);
            preserve_observed_generation(new, old);
        }
        ("apps", "deployments") => keep_metadata(new, old, "labels"),
        // `status.config` (dynamic kubelet config) is only kept where it is already in use.
        ("", "nodes") if old.pointer("/status/config").is_none_or(Value::is_null) => {
            if let Some(st) = new.get_mut("status").and_then(Value::as_object_mut) {
                st.remove("config");
            }
        }
        _ => {}
    }
}

/// Prepares a namespace `/finalize` update: everything but the status may change.
pub(super) fn prepare_finalize(new: &mut Value, old: &Value) {
    set_or_remove(new, "status", old.get("status"));
}

/// Makes `obj[key]` `value`, or removes `key` when there is none.
fn set_or_remove(obj: &mut Value, key: &str, value: Option<&Value>) {
    let Some(o) = obj.as_object_mut() else { return };
    match value {
        Some(v) => o.insert(key.into(), v.clone()),
        None => o.remove(key),
    };
}

/// The stored spec (every top-level field but metadata and status) replaces the request's.
fn keep_spec(new: &mut Value, old: &Value) {
    let Some(o) = new.as_object_mut() else { return };
    let mut kept: Map<String, Value> = spec_part(old);
    for k in ["metadata", "status", "kind", "apiVersion"] {
        if let Some(v) = o.remove(k) {
            kept.insert(k.into(), v);
        }
    }
    *o = kept;
}

/// The stored `metadata.<field>` replaces the request's.
fn keep_metadata(new: &mut Value, old: &Value, field: &str) {
    if let Some(meta) = new.get_mut("metadata") {
        set_or_remove(meta, field, old.pointer(&format!("/metadata/{field}")));
    }
}

fn is_unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// The pod's QoS class is set at creation; a status without one keeps the stored class.
fn backfill_qos_class(new: &mut Value, old: &Value) {
    let Some(qos) = old.pointer("/status/qosClass").filter(|q| !is_unset(Some(q))) else { return };
    if let Some(st) = new.get_mut("status").and_then(Value::as_object_mut) {
        if is_unset(st.get("qosClass")) {
            st.insert("qosClass".into(), qos.clone());
        }
    }
}

/// A status (or condition) without `observedGeneration` keeps the stored one; conditions are
/// matched by type, in order, since validation allows several of one type.
fn preserve_observed_generation(new: &mut Value, old: &Value) {
    let Some(st) = new.get_mut("status").and_then(Value::as_object_mut) else { return };
    if is_unset(st.get("observedGeneration")) {
        if let Some(g) = old.pointer("/status/observedGeneration").filter(|g| !is_unset(Some(g))) {
            st.insert("observedGeneration".into(), g.clone());
        }
    }
    let mut old_conditions: Vec<&Value> =
        old.pointer("/status/conditions").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let Some(conditions) = st.get_mut("conditions").and_then(Value::as_array_mut) else { return };
    for c in conditions.iter_mut() {
        let ty = c.get("type").cloned();
        let matched =
            old_conditions.iter().position(|o| o.get("type") == ty.as_ref()).map(|i| old_conditions.remove(i));
        let Some(g) = matched.and_then(|o| o.get("observedGeneration")).filter(|g| !is_unset(Some(g))) else {
            continue;
        };
        if let Some(c) = c.as_object_mut() {
            if is_unset(c.get("observedGeneration")) {
                c.insert("observedGeneration".into(), g.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
