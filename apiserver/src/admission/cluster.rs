//! The simpler kinds: Namespaces (the `kubernetes.io/metadata.name` label, phase),
//! Nodes (podCIDR(s), taints), Secrets (type Opaque, `stringData`, keys, size, typed
//! keys), ConfigMaps, ServiceAccounts and Leases.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, NamespaceStatus, Node, Secret, ServiceAccount, Taint};
use k8s_openapi::ByteString;
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;

use super::{meta, s};

/// The label every Namespace carries with its own name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Largest total size of a Secret's or ConfigMap's data.
const MAX_DATA_SIZE: usize = 1024 * 1024;

/// `SetDefaults_Namespace` / `SetDefaults_NamespaceStatus`: the name label (always set,
/// overwriting a wrong value) and phase Active.
pub fn default_namespace(ns: &mut Namespace) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata.labels.get_or_insert_with(BTreeMap::new).insert(NAMESPACE_NAME_LABEL.into(), name);
    }
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    if s(&status.phase).is_empty() {
        status.phase = Some("Active".into());
    }
}

pub fn prepare_namespace_create(ns: &mut Namespace) {
    ns.status = Some(NamespaceStatus { phase: Some("Active".into()), conditions: None });
}

pub fn validate_namespace(ns: &Namespace, old: Option<&Namespace>) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    if let Some(old) = old {
        return meta::validate_object_meta_update(&ns.metadata, &old.metadata, &meta_path);
    }
    let mut errs = meta::validate_object_meta(&ns.metadata, false, v::name_is_dns_label, &meta_path);
    let path = Path::new("spec").child("finalizers");
    for f in ns.spec.iter().flat_map(|sp| sp.finalizers.iter().flatten()) {
        errs.extend(meta::qualified_name(f, &path));
        errs.extend(meta::kube_finalizer_name(f, &path));
    }
    errs
}

pub fn validate_namespace_status(ns: &Namespace, old: &Namespace) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(&ns.metadata, &old.metadata, &Path::new("metadata"));
    let phase = ns.status.as_ref().map(|st| s(&st.phase)).unwrap_or("");
    let path = Path::new("status").child("Phase");
    if ns.metadata.deletion_timestamp.is_none() {
        if phase != "Active" {
            errs.push(FieldError::invalid(&path, phase, "may only be 'Active' if `deletionTimestamp` is empty"));
        }
    } else if phase != "Terminating" {
        errs.push(FieldError::invalid(&path, phase, "may only be 'Terminating' if `deletionTimestamp` is not empty"));
    }
    errs
}

/// Node defaults: `podCIDR` and `podCIDRs` in step (v1 conversion), allocatable from capacity.
pub fn default_node(node: &mut Node) {
    let spec = node.spec.get_or_insert_with(Default::default);
    let single = s(&spec.pod_cidr).to_string();
    match spec.pod_cidrs.as_deref() {
        None | Some([]) if !single.is_empty() => spec.pod_cidrs = Some(vec![single]),
        Some([first, ..]) if single.is_empty() => spec.pod_cidr = Some(first.clone()),
        _ => {}
    }
    if let Some(status) = node.status.as_mut() {
        if status.allocatable.is_none() && status.capacity.is_some() {
            status.allocatable = status.capacity.clone();
        }
    }
}

fn validate_taints(taints: &[Taint], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = path.index(i);
        errs.extend(meta::validate_label_name(&t.key, &p.child("key")));
        let msgs = v::is_valid_label_value(s(&t.value));
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(&p.child("value"), s(&t.value), msgs.join(";")));
        }
        if t.effect.is_empty() {
            errs.push(FieldError::required(&p.child("effect"), ""));
        } else if !matches!(t.effect.as_str(), "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                t.effect.as_str(),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
        if !seen.insert((t.effect.clone(), t.key.clone())) {
            let mut dup = FieldError::duplicate(&p, meta::to_json(t));
            dup.detail = "taints must be unique by key and effect pair".into();
            errs.push(dup);
        }
    }
    errs
}

fn validate_pod_cidrs(cidrs: &[String]) -> Vec<FieldError> {
    let path = Path::new("spec").child("podCIDRs");
    let mut errs = Vec::new();
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(meta::cidr(c, &path.index(i)));
    }
    if cidrs.len() > 1 {
        let families: BTreeSet<super::IpFamily> =
            cidrs.iter().filter_map(|c| v::parse_cidr_sloppy(c)).map(|(ip, _)| super::IpFamily::of(&ip)).collect();
        if families.len() < 2 || cidrs.len() > 2 {
            errs.push(FieldError::invalid(
                &path,
                cidrs.to_vec(),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(c) {
                errs.push(FieldError::duplicate(&path.index(i), c.as_str()));
            }
        }
    }
    errs
}

/// `ValidateNode` / `ValidateNodeUpdate`.
pub fn validate_node(node: &Node, old: Option<&Node>) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let spec = node.spec.clone().unwrap_or_default();
    let Some(old) = old else {
        let mut errs = meta::validate_object_meta(&node.metadata, false, v::name_is_dns_subdomain, &meta_path);
        errs.extend(validate_taints(spec.taints.as_deref().unwrap_or(&[]), &meta_path.child("taints")));
        errs.extend(validate_pod_cidrs(spec.pod_cidrs.as_deref().unwrap_or(&[])));
        return errs;
    };
    let mut errs = meta::validate_object_meta_update(&node.metadata, &old.metadata, &meta_path);
    let old_spec = old.spec.clone().unwrap_or_default();
    let old_cidrs = old_spec.pod_cidrs.unwrap_or_default();
    let new_cidrs = spec.pod_cidrs.clone().unwrap_or_default();
    if !old_cidrs.is_empty() && old_cidrs != new_cidrs {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("podCIDRs"),
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    } else if old_cidrs.is_empty() {
        errs.extend(validate_pod_cidrs(&new_cidrs));
    }
    let old_provider = s(&old_spec.provider_id);
    if !old_provider.is_empty() && old_provider != s(&spec.provider_id) {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    errs.extend(validate_taints(spec.taints.as_deref().unwrap_or(&[]), &meta_path.child("taints")));
    if spec.external_id != old_spec.external_id {
        errs.push(FieldError::forbidden(&Path::new("spec").child("externalID"), "may not be updated"));
    }
    errs
}

pub fn validate_node_status(node: &Node, old: &Node) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(&node.metadata, &old.metadata, &Path::new("metadata"));
    let mut seen = BTreeSet::new();
    let addresses = node.status.as_ref().and_then(|st| st.addresses.clone()).unwrap_or_default();
    for (i, addr) in addresses.iter().enumerate() {
        if !seen.insert((addr.type_.clone(), addr.address.clone())) {
            errs.push(FieldError::duplicate(&Path::new("status").child("addresses").index(i), meta::to_json(addr)));
        }
    }
    errs
}

/// `SetDefaults_Secret` and the v1 conversion of `stringData` (merged into `data`).
pub fn default_secret(secret: &mut Secret) {
    if s(&secret.type_).is_empty() {
        secret.type_ = Some("Opaque".into());
    }
    if let Some(string_data) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        for (k, value) in string_data {
            data.insert(k, ByteString(value.into_bytes()));
        }
    }
}

/// `ValidateSecret` / `ValidateSecretUpdate`.
pub fn validate_secret(secret: &Secret, old: Option<&Secret>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(&secret.metadata, &old.metadata, &Path::new("metadata")));
        errs.extend(meta::immutable_str(&secret.type_, &old.type_, &Path::new("type")));
        if old.immutable == Some(true) {
            if secret.immutable != Some(true) {
                errs.push(FieldError::forbidden(&Path::new("immutable"), "field is immutable when `immutable` is set"));
            }
            if secret.data != old.data {
                errs.push(FieldError::forbidden(&Path::new("data"), "field is immutable when `immutable` is set"));
            }
        }
    }
    errs.extend(meta::validate_object_meta(&secret.metadata, true, v::name_is_dns_subdomain, &Path::new("metadata")));
    let data_path = Path::new("data");
    let data = secret.data.clone().unwrap_or_default();
    let mut total = 0;
    for (k, value) in &data {
        errs.extend(meta::each(&data_path.key(k), k.as_str(), v::is_config_map_key(k)));
        total += value.0.len();
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_DATA_SIZE));
    }
    let has = |k: &str| data.contains_key(k);
    match s(&secret.type_) {
        "kubernetes.io/service-account-token" => {
            let name = secret.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/service-account.name"));
            if name.is_none_or(String::is_empty) {
                errs.push(FieldError::required(
                    &Path::new("metadata").child("annotations").key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => {
            errs.push(FieldError::required(&data_path.key(".dockercfg"), ""))
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            errs.push(FieldError::required(&data_path.key(".dockerconfigjson"), ""))
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(&data_path.key("username"), ""));
            errs.push(FieldError::required(&data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|d| d.0.is_empty()) => {
            errs.push(FieldError::required(&data_path.key("ssh-privatekey"), ""))
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !has(key) {
                    errs.push(FieldError::required(&data_path.key(key), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// `ValidateConfigMap` / `ValidateConfigMapUpdate`.
pub fn validate_config_map(cm: &ConfigMap, old: Option<&ConfigMap>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(&cm.metadata, &old.metadata, &Path::new("metadata")));
        if old.immutable == Some(true) {
            let frozen = "field is immutable when `immutable` is set";
            if cm.immutable != Some(true) {
                errs.push(FieldError::forbidden(&Path::new("immutable"), frozen));
            }
            if cm.data != old.data {
                errs.push(FieldError::forbidden(&Path::new("data"), frozen));
            }
            if cm.binary_data != old.binary_data {
                errs.push(FieldError::forbidden(&Path::new("binaryData"), frozen));
            }
        }
    }
    errs.extend(meta::validate_object_meta(&cm.metadata, true, v::name_is_dns_subdomain, &Path::new("metadata")));
    let binary = cm.binary_data.clone().unwrap_or_default();
    let mut total = 0;
    for (k, value) in cm.data.iter().flatten() {
        let p = Path::new("data").key(k);
        errs.extend(meta::each(&p, k.as_str(), v::is_config_map_key(k)));
        if binary.contains_key(k) {
            errs.push(FieldError::invalid(&p, k.as_str(), "duplicate of key present in binaryData"));
        }
        total += value.len();
    }
    for (k, value) in &binary {
        errs.extend(meta::each(&Path::new("binaryData").key(k), k.as_str(), v::is_config_map_key(k)));
        total += value.0.len();
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(&Path::new(""), MAX_DATA_SIZE));
    }
    errs
}

pub fn validate_service_account(sa: &ServiceAccount, old: Option<&ServiceAccount>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(old) = old {
        errs.extend(meta::validate_object_meta_update(&sa.metadata, &old.metadata, &Path::new("metadata")));
    }
    errs.extend(meta::validate_object_meta(&sa.metadata, true, v::name_is_dns_subdomain, &Path::new("metadata")));
    errs
}

/// `ValidateLease` / `ValidateLeaseUpdate`.
pub fn validate_lease(lease: &Lease, old: Option<&Lease>) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = match old {
        Some(old) => meta::validate_object_meta_update(&lease.metadata, &old.metadata, &meta_path),
        None => meta::validate_object_meta(&lease.metadata, true, v::name_is_dns_subdomain, &meta_path),
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(&path.child("leaseDurationSeconds"), d, "must be greater than 0"));
    }
    if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(&path.child("leaseTransitions"), t, "must be greater than or equal to 0"));
    }
    if let Some(strategy) = spec.strategy.as_deref() {
        if strategy != "OldestEmulationVersion" {
            errs.push(FieldError::not_supported(&path.child("strategy"), strategy, &["OldestEmulationVersion"]));
        }
    }
    if spec.preferred_holder.as_deref().is_some_and(|h| !h.is_empty()) && s(&spec.strategy).is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

#[cfg(test)]
mod tests;
