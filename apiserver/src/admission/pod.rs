//! Pods: defaults (`SetDefaults_Pod` and the mutating admission plugins every cluster
//! runs: ServiceAccount, Priority, DefaultTolerationSeconds), create preparation (phase
//! Pending, QoS class) and validation of creates, updates (`pod updates may not change
//! fields other than …`) and status updates.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, Toleration};
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;
use serde_json::Value;

use super::podspec::{self, SpecOptions};
use super::{meta, s};

/// What a Pod's spec may change on update, in kube-apiserver's words.
const UPDATABLE_POD_SPEC_FIELDS: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];
/// Taints every Pod tolerates for 5 minutes (DefaultTolerationSeconds admission).
const DEFAULT_TOLERATED_TAINTS: &[&str] = &["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"];
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Pod defaults, including what kube-apiserver's default admission plugins add.
pub fn default_pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    podspec::default_pod_spec(spec);
    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        default_requests_to_limits(c);
    }
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
    if spec.host_network == Some(true) {
        for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
            for port in c.ports.iter_mut().flatten() {
                if port.host_port.unwrap_or(0) == 0 {
                    port.host_port = Some(port.container_port);
                }
            }
        }
    }
    // ServiceAccount admission (and the v1 conversion of the deprecated field).
    if s(&spec.service_account_name).is_empty() {
        let deprecated = s(&spec.service_account).to_string();
        spec.service_account_name = Some(if deprecated.is_empty() { "default".into() } else { deprecated });
    }
    spec.service_account = spec.service_account_name.clone();
    // Priority admission.
    if spec.priority.is_none() {
        spec.priority = Some(0);
    }
    if spec.preemption_policy.is_none() {
        spec.preemption_policy = Some("PreemptLowerPriority".into());
    }
    // DefaultTolerationSeconds admission.
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for taint in DEFAULT_TOLERATED_TAINTS {
        let tolerated = tolerations.iter().any(|t| {
            (s(&t.key) == *taint || (s(&t.key).is_empty() && s(&t.operator) == "Exists"))
                && (s(&t.effect).is_empty() || s(&t.effect) == "NoExecute")
        });
        if !tolerated {
            tolerations.push(Toleration {
                key: Some((*taint).into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(DEFAULT_TOLERATION_SECONDS),
                value: None,
            });
        }
    }
}

/// Requests default to limits when only limits are set (`SetDefaults_Pod`).
fn default_requests_to_limits(c: &mut Container) {
    let Some(res) = c.resources.as_mut() else { return };
    let Some(limits) = res.limits.clone() else { return };
    let requests = res.requests.get_or_insert_with(Default::default);
    for (k, q) in limits {
        requests.entry(k).or_insert(q);
    }
}

/// `PrepareForCreate`: a new Pod starts Pending with its QoS class.
pub fn prepare_for_create(pod: &mut Pod) {
    let qos = knet_apimachinery::qos::pod_qos_class(pod.spec.as_ref().unwrap_or(&PodSpec::default()));
    pod.status = Some(PodStatus { phase: Some("Pending".into()), qos_class: Some(qos.into()), ..Default::default() });
}

/// `ValidatePodCreate` / `ValidatePodUpdate`.
pub fn validate(pod: &Pod, old: Option<&Pod>) -> Vec<FieldError> {
    let spec = pod.spec.clone().unwrap_or_default();
    let spec_path = Path::new("spec");
    match old {
        None => {
            let mut errs = validate_metadata_and_spec(pod, &spec);
            if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
                errs.push(FieldError::forbidden(&spec_path.child("ephemeralContainers"), "cannot be set on create"));
            }
            if !s(&spec.node_name).is_empty() && spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty()) {
                errs.push(FieldError::forbidden(
                    &spec_path.child("nodeName"),
                    "cannot be set until all schedulingGates have been cleared",
                ));
            }
            errs
        }
        Some(old) => validate_update(pod, &spec, old),
    }
}

fn validate_metadata_and_spec(pod: &Pod, spec: &PodSpec) -> Vec<FieldError> {
    let spec_path = Path::new("spec");
    let mut errs = meta::validate_object_meta(&pod.metadata, true, v::name_is_dns_subdomain, &Path::new("metadata"));
    errs.extend(podspec::validate_pod_spec(spec, &spec_path, SpecOptions { resource_is_pod: true }));
    for (list, name) in [(Some(&spec.containers), "containers"), (spec.init_containers.as_ref(), "initContainers")] {
        for (i, c) in list.into_iter().flatten().enumerate() {
            let image = s(&c.image);
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &spec_path.child(name).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

fn validate_update(pod: &Pod, spec: &PodSpec, old: &Pod) -> Vec<FieldError> {
    let spec_path = Path::new("spec");
    let old_spec = old.spec.clone().unwrap_or_default();
    let mut errs = meta::validate_object_meta_update(&pod.metadata, &old.metadata, &Path::new("metadata"));
    errs.extend(validate_metadata_and_spec(pod, spec));
    let empty = Vec::new();
    for (new_list, old_list, name) in [
        (&spec.containers, &old_spec.containers, "containers"),
        (
            spec.init_containers.as_ref().unwrap_or(&empty),
            old_spec.init_containers.as_ref().unwrap_or(&empty),
            "initContainers",
        ),
    ] {
        if new_list.len() != old_list.len() {
            errs.push(FieldError::forbidden(&spec_path.child(name), "pod updates may not add or remove containers"));
            return errs;
        }
    }
    let ads_path = spec_path.child("activeDeadlineSeconds");
    match (spec.active_deadline_seconds, old_spec.active_deadline_seconds) {
        (Some(new), _) if !(0..=i64::from(i32::MAX)).contains(&new) => {
            errs.push(FieldError::invalid(&ads_path, new, v::inclusive_range_error(0, i32::MAX.into())));
            return errs;
        }
        (Some(new), Some(old)) if old < new => {
            errs.push(FieldError::invalid(&ads_path, new, "must be less than or equal to previous value"));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &ads_path,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    errs.extend(only_added_tolerations(spec, &old_spec, &spec_path.child("tolerations")));
    if spec == &old_spec {
        return errs;
    }
    let mut munged = spec.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
        c.image = o.image.clone();
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(old_spec.init_containers.iter().flatten()) {
        c.image = o.image.clone();
    }
    munged.active_deadline_seconds = old_spec.active_deadline_seconds;
    munged.scheduling_gates = old_spec.scheduling_gates.clone();
    munged.tolerations = old_spec.tolerations.clone();
    if old_spec.termination_grace_period_seconds.is_some_and(|t| t < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
    }
    if munged != old_spec {
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE_POD_SPEC_FIELDS.join(","),
                spec_diff(&old_spec, &munged)
            ),
        ));
    }
    errs
}

/// Allows only additions to tolerations (their `tolerationSeconds` may change).
fn only_added_tolerations(spec: &PodSpec, old: &PodSpec, path: &Path) -> Vec<FieldError> {
    let new = spec.tolerations.as_deref().unwrap_or(&[]);
    for o in old.tolerations.iter().flatten() {
        let found = new.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            o == *n
        });
        if !found {
            return vec![FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    podspec::validate_tolerations(new, path)
}

/// A short, readable diff of two pod specs (one line per changed top-level field).
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let (Ok(Value::Object(o)), Ok(Value::Object(n))) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return String::new();
    };
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (before, after) = (o.get(k), n.get(k));
        if before == after {
            continue;
        }
        if let Some(b) = before {
            out.push_str(&format!("- \t{k}: {b},\n"));
        }
        if let Some(a) = after {
            out.push_str(&format!("+ \t{k}: {a},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

/// `ValidatePodStatusUpdate` (the parts a node agent can get wrong).
pub fn validate_status(pod: &Pod, old: &Pod) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = meta::validate_object_meta_update(&pod.metadata, &old.metadata, &meta_path);
    let status = pod.status.clone().unwrap_or_default();
    let old_status = old.status.clone().unwrap_or_default();
    const SYSTEM_CONDITIONS: &[&str] = &["PodScheduled", "Ready", "Initialized"];
    for (i, cond) in status.conditions.iter().flatten().enumerate() {
        if !SYSTEM_CONDITIONS.contains(&cond.type_.as_str()) {
            errs.extend(meta::qualified_name(&cond.type_, &meta_path.child("conditions").index(i).child("Type")));
        }
    }
    let status_path = Path::new("status");
    let node = |p: &Pod| p.spec.as_ref().and_then(|sp| sp.node_name.clone()).unwrap_or_default();
    if node(pod) != node(old) {
        errs.push(FieldError::forbidden(&status_path.child("nodeName"), "may not be changed directly"));
    }
    if let Some(nominated) = status.nominated_node_name.as_deref().filter(|n| !n.is_empty()) {
        if status.nominated_node_name != old_status.nominated_node_name {
            errs.extend(meta::each(
                &status_path.child("nominatedNodeName"),
                nominated,
                v::name_is_dns_subdomain(nominated, false),
            ));
        }
    }
    if !s(&old_status.qos_class).is_empty() {
        errs.extend(meta::immutable(&status.qos_class, &old_status.qos_class, &status_path.child("qosClass")));
    }
    let pod_ips: Vec<String> = status.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
    errs.extend(ip_list(&pod_ips, &status_path.child("podIPs")));
    let host_ips: Vec<String> = status.host_ips.iter().flatten().map(|p| p.ip.clone()).collect();
    if let Some(first) = host_ips.first() {
        if s(&status.host_ip) != first {
            errs.push(FieldError::invalid(
                &status_path.child("hostIPs").index(0).child("ip"),
                first.as_str(),
                "must be equal to `hostIP`",
            ));
        }
    }
    errs.extend(ip_list(&host_ips, &status_path.child("hostIPs")));
    errs
}

/// Valid IPs, at most one per family, no duplicates.
fn ip_list(ips: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        errs.extend(meta::ip(ip, &path.index(i)));
    }
    if ips.len() > 1 {
        let families: BTreeSet<super::IpFamily> =
            ips.iter().filter_map(|ip| v::parse_ip_sloppy(ip)).map(|ip| super::IpFamily::of(&ip)).collect();
        if families.len() != ips.len() {
            let value: Vec<Value> = ips.iter().map(|ip| serde_json::json!({ "ip": ip })).collect();
            errs.push(FieldError::invalid(path, value, "may specify no more than one IP for each IP family"));
        }
    }
    errs
}

#[cfg(test)]
mod tests;
