//! What creates and updates may change, per kind: kube-apiserver's `PrepareForCreate`
//! and `PrepareForUpdate`, status-subresource semantics, and system metadata.

use serde_json::{json, Map, Value};

use crate::resources::ResourceInfo;

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
    if res.group.is_empty() && res.plural == "namespaces" {
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

/// Makes `new` what an update of `part` may produce from `old`.
pub fn prepare_for_update(res: &ResourceInfo, part: Part, new: &mut Value, old: &Value) {
    match part {
        Part::Main => {
            keep_system_metadata(new, old);
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
            if res.group.is_empty() && res.plural == "namespaces" {
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
        }
        Part::Status => {
            let status = new.get("status").cloned();
            *new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        Part::Finalize => {
            let f = new.pointer("/spec/finalizers").cloned().unwrap_or(json!([]));
            *new = old.clone();
            if !new.get("spec").is_some_and(Value::is_object) {
                new["spec"] = json!({});
            }
            new["spec"]["finalizers"] = f;
        }
    }
    follow_generation(new, old);
    drop_empty_metadata(new);
}

/// Sets `new`'s generation: `old`'s, plus one when the spec (everything but metadata and status) changed.
/// Also to be called after defaulting, so that a spec that only lacked defaults is no change.
pub fn follow_generation(new: &mut Value, old: &Value) {
    let old_gen = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
    let gen = if spec_part(new) != spec_part(old) { old_gen + 1 } else { old_gen };
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
    let spec = res.group.is_empty()
        && res.plural == "namespaces"
        && obj.pointer("/spec/finalizers").and_then(Value::as_array).is_some_and(|a| !a.is_empty());
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
        assert_eq!(st["metadata"]["labels"]["a"], "1");
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
        follow_generation(&mut new, &old);
        assert_eq!(new["metadata"]["generation"], 3);
        let mut created = json!({"metadata": {"name": "x", "finalizers": [], "labels": {"a": "1"}}});
        prepare_for_create(svc_res(), &mut created);
        assert!(created["metadata"].get("finalizers").is_none());
        assert_eq!(created["metadata"]["labels"], json!({"a": "1"}));
    }
}
