//! What creates, updates and deletes may change, per kind: kube-apiserver's `PrepareForCreate`
//! and `PrepareForUpdate` with the generic `BeforeUpdate` (system metadata, generation), the
//! status and finalize subresources ([`status`]) and graceful deletion ([`delete`]).

mod delete;
mod status;

use serde_json::{json, Map, Value};

use crate::resources::ResourceInfo;

pub use delete::{deletes_on_update, plan_delete, Deletion};

/// Which part of an object a write targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The object itself (`/services/x`).
    Main,
    /// `/status`: only `status` changes.
    Status,
    /// `/finalize` (namespaces): only `spec.finalizers` changes.
    Finalize,
}

impl Part {
    pub fn from_subresource(sub: Option<&str>) -> Option<Part> {
        match sub {
            None => Some(Part::Main),
            Some("status") => Some(Part::Status),
            Some("finalize") => Some(Part::Finalize),
            _ => None,
        }
    }
}

/// Kinds a PUT may create (kube's `AllowCreateOnUpdate`).
pub fn allow_create_on_update(res: &ResourceInfo) -> bool {
    matches!(
        (res.group, res.plural),
        ("", "endpoints") | ("", "events") | ("events.k8s.io", "events") | ("coordination.k8s.io", "leases")
    )
}

/// The current time as a Kubernetes timestamp (`2006-01-02T15:04:05Z`).
pub fn now() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

/// Fills system metadata on create (uid, creationTimestamp, generation) and drops what a
/// client may not set; the kind's own preparation (status) is `admission::prepare_for_create`.
pub fn prepare_for_create(res: &ResourceInfo, obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.insert("generation".into(), json!(1));
        for k in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"] {
            meta.remove(k);
        }
    }
    drop_empty_metadata(obj);
    // The per-kind status a new object starts with is admission's (`admission::prepare_for_create`);
    // what is generic to the API machinery stays here. Namespaces wait for the namespace
    // controller's `kubernetes` finalizer, as in kube-apiserver.
    if is_namespaces(res) {
        if let Some(o) = obj.as_object_mut() {
            let spec = o.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.insert("finalizers".into(), json!(["kubernetes"]));
            }
        }
    }
}

/// Everything but metadata and status: what `generation` tracks.
fn spec_part(v: &Value) -> Map<String, Value> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "kind" | "apiVersion"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Copies the system-owned metadata of `old` into `new`.
fn keep_system_metadata(new: &mut Value, old: &Value) {
    let Some(old_meta) = old.get("metadata").and_then(Value::as_object) else { return };
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(k) {
            Some(v) => {
                meta.insert(k.into(), v.clone());
            }
            None => {
                meta.remove(k);
            }
        }
    }
    meta.remove("selfLink");
    meta.remove("managedFields");
}

/// Makes `new` what an update of `part` may produce from `old`: the generic `BeforeUpdate` (system
/// metadata is the stored one; only main updates move the generation) and the part's strategy.
pub fn prepare_for_update(res: &ResourceInfo, part: Part, new: &mut Value, old: &Value) {
    keep_system_metadata(new, old);
    match part {
        Part::Main => {
            if res.has_subresource("status") {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            // Namespace spec.finalizers only change through /finalize.
            if is_namespaces(res) {
                let f = old.pointer("/spec/finalizers").cloned();
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    match f {
                        Some(f) => spec.insert("finalizers".into(), f),
                        None => spec.remove("finalizers"),
                    };
                } else if let Some(f) = f {
                    new["spec"] = json!({"finalizers": f});
                }
            }
            follow_generation(res, new, old);
        }
        Part::Status => status::prepare_status(res, new, old),
        Part::Finalize => status::prepare_finalize(new, old),
    }
    drop_empty_metadata(new);
}

fn is_namespaces(res: &ResourceInfo) -> bool {
    res.group.is_empty() && res.plural == "namespaces"
}

/// The annotations of an object (none and empty alike).
fn annotations(v: &Value) -> Map<String, Value> {
    v.pointer("/metadata/annotations").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// Sets the generation of a main-resource update: `old`'s, plus one when what the generation tracks
/// changed: the spec (everything but metadata and status), and for Deployments their annotations too
/// (they are copied to the Deployment's ReplicaSets). Also to be called after defaulting, so that a
/// spec that only lacked defaults is no change.
pub fn follow_generation(res: &ResourceInfo, new: &mut Value, old: &Value) {
    let old_gen = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
    let deployment = res.group == "apps" && res.plural == "deployments";
    let changed = spec_part(new) != spec_part(old) || (deployment && annotations(new) != annotations(old));
    let gen = if changed { old_gen + 1 } else { old_gen };
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), json!(gen));
    }
}

/// Drops empty `labels`, `annotations`, `finalizers` and `ownerReferences`: kube-apiserver never
/// stores them (they are `omitempty`), so removing the last label leaves no `labels: {}` behind.
fn drop_empty_metadata(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    for k in ["labels", "annotations", "finalizers", "ownerReferences"] {
        let empty = match meta.get(k) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            meta.remove(k);
        }
    }
}

/// Does the object wait on finalizers (metadata, or a namespace's spec)?
pub fn has_finalizers(res: &ResourceInfo, obj: &Value) -> bool {
    let meta = obj.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    let spec =
        is_namespaces(res) && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
    meta || spec
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

/// Two versions of an object are the same write (ignoring the resourceVersion).
pub fn same(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    fn svc_res() -> &'static ResourceInfo {
        resources::find("", "v1", "services").unwrap()
    }

    #[test]
    fn create_resets_status_and_sets_system_metadata() {
        let mut s = json!({"metadata": {"name": "x", "resourceVersion": "5"}, "spec": {}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        prepare_for_create(svc_res(), &mut s);
        crate::admission::prepare_for_create(svc_res(), &mut s).unwrap();
        assert_eq!(s["status"], json!({"loadBalancer": {}}));
        assert!(s["metadata"]["uid"].is_string());
        assert!(s["metadata"].get("resourceVersion").is_none());
        assert_eq!(s["metadata"]["generation"], 1);
    }

    #[test]
    fn main_update_keeps_status_status_update_keeps_spec() {
        let old = json!({"metadata": {"name": "x", "uid": "u", "generation": 1, "labels": {"a": "1"}}, "spec": {"type": "ClusterIP"}, "status": {"loadBalancer": {}}});
        let mut new = json!({"metadata": {"name": "x", "labels": {"a": "2"}}, "spec": {"type": "NodePort"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}});
        prepare_for_update(svc_res(), Part::Main, &mut new, &old);
        assert_eq!(new["status"], old["status"]);
        assert_eq!(new["metadata"]["uid"], "u");
        assert_eq!(new["metadata"]["generation"], 2);
        assert_eq!(new["metadata"]["labels"]["a"], "2");
        let mut st = json!({"metadata": {"name": "x", "labels": {"a": "3"}}, "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}});
        prepare_for_update(svc_res(), Part::Status, &mut st, &old);
        assert_eq!(st["spec"], old["spec"]);
        assert_eq!(st["metadata"]["labels"]["a"], "3", "a Service's status write may change its labels");
        assert_eq!(st["status"]["loadBalancer"]["ingress"][0]["ip"], "1.1.1.1");
        assert_eq!(st["metadata"]["generation"], 1);
    }

    #[test]
    fn a_spec_that_only_lacked_defaults_is_no_new_generation_and_empty_metadata_goes() {
        let old = json!({"metadata": {"name": "x", "generation": 3, "labels": {"a": "1"}}, "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
        let mut new =
            json!({"metadata": {"name": "x", "labels": {}, "annotations": {}}, "spec": {"ports": [{"port": 80}]}});
        prepare_for_update(svc_res(), Part::Main, &mut new, &old);
        assert_eq!(new["metadata"]["generation"], 4, "before defaulting the spec looks changed");
        assert!(new["metadata"].get("labels").is_none() && new["metadata"].get("annotations").is_none(), "{new}");
        new["spec"]["ports"][0]["protocol"] = json!("TCP");
        follow_generation(svc_res(), &mut new, &old);
        assert_eq!(new["metadata"]["generation"], 3);
        let mut created = json!({"metadata": {"name": "x", "finalizers": [], "labels": {"a": "1"}}});
        prepare_for_create(svc_res(), &mut created);
        assert!(created["metadata"].get("finalizers").is_none());
        assert_eq!(created["metadata"]["labels"], json!({"a": "1"}));
    }
}
