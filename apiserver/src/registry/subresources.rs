//! The `scale` subresource (autoscaling/v1 Scale over `spec.replicas`) and pod `binding`.

use serde_json::{json, Value};

use knet_apimachinery::field::{FieldError, Path};

use super::delete::precondition_failure;
use super::strategy::{self, Part};
use super::write::Written;
use super::{decode, key, PatchType, Registry, WriteOptions};
use crate::alloc::Plan;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::storage::Compare;

/// The label selector of a workload as the string form Scale carries.
fn selector_string(obj: &Value) -> String {
    let sel = obj.pointer("/spec/selector");
    let mut parts = Vec::new();
    if let Some(Value::Object(m)) = sel {
        // apps/v1: a LabelSelector; core/v1 RC: a plain map.
        let labels = if m.contains_key("matchLabels") || m.contains_key("matchExpressions") {
            m.get("matchLabels").and_then(Value::as_object).cloned().unwrap_or_default()
        } else {
            m.clone()
        };
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
        if let Some(exprs) = m.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                    "In" => parts.push(format!("{key} in ({})", values.join(","))),
                    "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
                    "Exists" => parts.push(key.to_string()),
                    "DoesNotExist" => parts.push(format!("!{key}")),
                    _ => {}
                }
            }
        }
    }
    parts.sort();
    parts.join(",")
}

/// The Scale view of a workload.
pub fn to_scale(obj: &Value) -> Value {
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector_string(obj),
        },
    })
}

impl Registry {
    pub async fn get_scale(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        Ok(to_scale(&self.get(res, ns, name).await?))
    }

    /// PUT or PATCH of `/scale`: `change` maps the current Scale to the desired one.
    pub async fn update_scale<F>(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &WriteOptions,
        change: F,
    ) -> Result<Value, ApiError>
    where
        F: Fn(&Value) -> Result<Value, ApiError>,
    {
        let w: Written = self
            .update_with(res, ns, name, Part::Main, opts, |cur| {
                let scale = change(&to_scale(cur))?;
                if let Some(rv) = scale.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                    if !rv.is_empty() && Some(rv) != cur.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                        return Err(ApiError::conflict(res, name));
                    }
                }
                let replicas = match scale.pointer("/spec/replicas") {
                    Some(Value::Number(n)) => n.as_i64().unwrap_or(-1),
                    None | Some(Value::Null) => 0,
                    Some(_) => -1,
                };
                if replicas < 0 {
                    return Err(ApiError::invalid(
                        res,
                        name,
                        vec![knet_apimachinery::field::FieldError::invalid(
                            &knet_apimachinery::field::Path::new("spec").child("replicas"),
                            scale.pointer("/spec/replicas").cloned().unwrap_or(Value::Null),
                            "must be greater than or equal to 0",
                        )],
                    ));
                }
                let mut new = cur.clone();
                new["spec"]["replicas"] = json!(replicas);
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
                Ok(new)
            })
            .await?;
        Ok(to_scale(&w.object))
    }

    /// PATCH of `/scale`.
    pub async fn patch_scale(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        ptype: PatchType,
        patch_doc: &Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.update_scale(res, ns, name, opts, |scale| {
            let out = match ptype {
                PatchType::Json => knet_apimachinery::patch::json_patch(scale, patch_doc),
                // Scale has no lists: merge and strategic merge agree.
                PatchType::Merge | PatchType::StrategicMerge => {
                    Ok(knet_apimachinery::patch::merge_patch(scale, patch_doc))
                }
                PatchType::Apply => {
                    return Err(ApiError::UnsupportedMediaType("server-side apply is not supported by knet".into()))
                }
            };
            out.map_err(ApiError::from)
        })
        .await
    }

    /// POST `pods/{name}/binding`: assigns a pod to a node, once, as kube-apiserver's
    /// `BindingREST`: one write that sets `spec.nodeName`, the binding's annotations and the
    /// `PodScheduled` condition. A pod already bound or being deleted, or one whose uid or
    /// resourceVersion is not the binding's precondition, is a 409 on `pods/binding`.
    pub async fn bind(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        binding: &Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if binding.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("") != name {
            return Err(ApiError::BadRequest("name in URL does not match name in Binding object".into()));
        }
        let target = |f: &str| binding.pointer(&format!("/target/{f}")).and_then(Value::as_str).unwrap_or("");
        let mut errs = Vec::new();
        let target_path = Path::new("target");
        if !target("kind").is_empty() && target("kind") != "Node" {
            errs.push(FieldError::not_supported(&target_path.child("kind"), target("kind"), &["Node", "<empty>"]));
        }
        if target("name").is_empty() {
            errs.push(FieldError::required(&target_path.child("name"), ""));
        }
        if !errs.is_empty() {
            let binding_res = ResourceInfo { kind: "Binding", ..*res };
            return Err(ApiError::invalid(&binding_res, name, errs));
        }
        let node = target("name");
        let conflict = |detail: String| ApiError::Conflict {
            group: String::new(),
            qualified: "pods/binding".into(),
            plural: "pods/binding".into(),
            name: name.into(),
            detail,
        };
        // The binding's uid and resourceVersion, when set, are preconditions.
        let want_uid = binding.pointer("/metadata/uid").and_then(Value::as_str).filter(|s| !s.is_empty());
        let want_rv = binding.pointer("/metadata/resourceVersion").and_then(Value::as_str).filter(|s| !s.is_empty());
        let bound = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
        let k = key(res, ns, name);
        for _ in 0..16 {
            let Some(kv) = self.store.get(&k).await? else {
                return Err(ApiError::not_found(res, name));
            };
            let mut pod = decode(&kv)?;
            if let Some(why) = precondition_failure(want_uid, want_rv, &pod, kv.mod_revision) {
                return Err(conflict(why));
            }
            if strategy::is_deleting(&pod) {
                return Err(conflict(format!("pod {name} is being deleted, cannot be assigned to a host")));
            }
            if let Some(n) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
                return Err(conflict(format!("pod {name} is already assigned to node {n:?}")));
            }
            pod["spec"]["nodeName"] = json!(node);
            if let Some(Value::Object(annotations)) = binding.pointer("/metadata/annotations") {
                if !pod["metadata"].get("annotations").is_some_and(Value::is_object) {
                    pod["metadata"]["annotations"] = json!({});
                }
                for (a, v) in annotations {
                    pod["metadata"]["annotations"][a] = v.clone();
                }
            }
            set_pod_scheduled(&mut pod);
            if opts.dry_run {
                return Ok(bound);
            }
            let r =
                self.commit_put(Compare::ModRevision(k.clone(), kv.mod_revision), &k, &pod, &Plan::default()).await?;
            if r.succeeded {
                return Ok(bound);
            }
        }
        Err(ApiError::conflict(res, name))
    }
}

/// Sets the `PodScheduled=True` condition (keeping its transition time if it was already true).
fn set_pod_scheduled(pod: &mut Value) {
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    if !pod["status"].get("conditions").is_some_and(Value::is_array) {
        pod["status"]["conditions"] = json!([]);
    }
    let Some(conds) = pod["status"]["conditions"].as_array_mut() else { return };
    let now = strategy::now();
    match conds.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled")) {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) != Some("True") {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!("True");
            if let Some(m) = c.as_object_mut() {
                m.remove("reason");
                m.remove("message");
            }
        }
        None => conds
            .push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view() {
        let d = json!({"metadata": {"name": "d", "namespace": "n", "resourceVersion": "3"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "nginx"}}}, "status": {"replicas": 1}});
        let s = to_scale(&d);
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=nginx");
        let rc = json!({"metadata": {"name": "r"}, "spec": {"selector": {"app": "nginx"}}});
        assert_eq!(to_scale(&rc)["status"]["selector"], "app=nginx");
        assert_eq!(to_scale(&rc)["spec"]["replicas"], 1);
    }
}
