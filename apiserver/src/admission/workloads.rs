//! Workloads: ReplicationControllers, ReplicaSets and Deployments — defaults (replicas 1,
//! RC selector/labels from the template, Deployment strategy RollingUpdate 25%/25%,
//! revisionHistoryLimit 10, progressDeadlineSeconds 600), generation handling, and
//! validation of specs (selector matching the template, immutable apps/v1 selectors)
//! and statuses.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController, ReplicationControllerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;
use serde_json::Value;

use super::podspec;
use super::{meta, s};

fn default_template(template: &mut PodTemplateSpec) {
    podspec::default_pod_spec(template.spec.get_or_insert_with(Default::default));
}

/// `SetDefaults_ReplicationController`: selector and labels from the template, replicas 1.
pub fn default_replication_controller(rc: &mut ReplicationController) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    let labels = spec.template.as_ref().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone());
    if let Some(labels) = labels {
        if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) {
            spec.selector = Some(labels.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
            rc.metadata.labels = Some(labels);
        }
    }
    spec.replicas.get_or_insert(1);
    if let Some(t) = spec.template.as_mut() {
        default_template(t);
    }
}

/// `SetDefaults_ReplicaSet`.
pub fn default_replica_set(rs: &mut ReplicaSet) {
    let spec = rs.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    if let Some(t) = spec.template.as_mut() {
        default_template(t);
    }
}

/// `SetDefaults_Deployment`.
pub fn default_deployment(d: &mut Deployment) {
    let spec = d.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
    if s(&strategy.type_).is_empty() {
        strategy.type_ = Some("RollingUpdate".into());
    }
    if s(&strategy.type_) == "RollingUpdate" {
        let ru = strategy.rolling_update.get_or_insert_with(RollingUpdateDeployment::default);
        ru.max_unavailable.get_or_insert_with(|| IntOrString::String("25%".into()));
        ru.max_surge.get_or_insert_with(|| IntOrString::String("25%".into()));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    default_template(&mut spec.template);
}

// Generations (and keeping the status on updates) are the registry's `strategy`, for every kind.

pub fn prepare_replication_controller_create(rc: &mut ReplicationController) {
    rc.status = Some(ReplicationControllerStatus::default());
}

pub fn prepare_replica_set_create(rs: &mut ReplicaSet) {
    rs.status = Some(ReplicaSetStatus::default());
}

pub fn prepare_deployment_create(d: &mut Deployment) {
    d.status = Some(DeploymentStatus::default());
}

fn template_labels(t: &PodTemplateSpec) -> Option<&BTreeMap<String, String>> {
    t.metadata.as_ref().and_then(|m| m.labels.as_ref())
}

fn labels_value(labels: Option<&BTreeMap<String, String>>) -> Value {
    meta::to_json(&labels.cloned().unwrap_or_default())
}

/// Pod template checks shared by RCs, ReplicaSets and Deployments: the template labels
/// match the selector, the template validates, restartPolicy is Always, no deadline.
fn validate_template_for_controller(
    template: Option<&PodTemplateSpec>,
    matches: Option<bool>,
    deadline_forbidden: bool,
    kind: &str,
    path: &Path,
) -> Vec<FieldError> {
    let Some(template) = template else { return vec![FieldError::required(path, "")] };
    let mut errs = Vec::new();
    if matches == Some(false) {
        errs.push(FieldError::invalid(
            &path.child("metadata").child("labels"),
            labels_value(template_labels(template)),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(podspec::validate_template(template, path));
    let spec = template.spec.clone().unwrap_or_default();
    let spec_path = path.child("spec");
    let restart = s(&spec.restart_policy);
    if restart != "Always" {
        errs.push(FieldError::not_supported(&spec_path.child("restartPolicy"), restart, &["Always"]));
    }
    if let Some(ads) = spec.active_deadline_seconds {
        let msg = format!("activeDeadlineSeconds in {kind} is not Supported");
        errs.push(if deadline_forbidden {
            FieldError::forbidden(&spec_path.child("activeDeadlineSeconds"), msg)
        } else {
            FieldError::invalid(&spec_path.child("activeDeadlineSeconds"), ads, msg)
        });
    }
    errs
}

/// `ValidateReplicationController` / `ValidateReplicationControllerUpdate`.
pub fn validate_replication_controller(
    rc: &ReplicationController,
    old: Option<&ReplicationController>,
) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = match old {
        Some(old) => meta::validate_object_meta_update(&rc.metadata, &old.metadata, &meta_path),
        None => meta::validate_object_meta(&rc.metadata, true, v::name_is_dns_subdomain, &meta_path),
    };
    let spec = rc.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    errs.extend(meta::nonnegative(spec.min_ready_seconds.unwrap_or(0).into(), &path.child("minReadySeconds")));
    let selector = spec.selector.clone().unwrap_or_default();
    if selector.is_empty() {
        errs.push(FieldError::required(&path.child("selector"), ""));
    }
    errs.extend(meta::nonnegative(spec.replicas.unwrap_or(0).into(), &path.child("replicas")));
    let matches = spec
        .template
        .as_ref()
        .filter(|_| !selector.is_empty())
        .map(|t| meta::set_matches(&selector, template_labels(t)));
    errs.extend(validate_template_for_controller(
        spec.template.as_ref(),
        matches,
        true,
        "ReplicationController",
        &path.child("template"),
    ));
    errs
}

/// Selector checks of apps/v1 workloads; `present` is whether the JSON had a selector.
/// Returns the errors and whether the template labels match (None: not checked).
fn validate_selector(
    sel: &LabelSelector,
    present: bool,
    template: Option<&PodTemplateSpec>,
    path: &Path,
) -> (Vec<FieldError>, Option<bool>) {
    let sel_path = path.child("selector");
    let mut errs = Vec::new();
    if !present {
        errs.push(FieldError::required(&sel_path, ""));
        // A missing selector selects nothing, so the template never matches.
        return (errs, template.map(|_| false));
    }
    let sel_errs = meta::validate_label_selector(Some(sel), &sel_path);
    let valid = sel_errs.is_empty();
    errs.extend(sel_errs);
    if meta::selector_is_empty(sel) {
        errs.push(FieldError::invalid(&sel_path, meta::to_json(sel), "empty selector is invalid for deployment"));
    }
    if !valid {
        errs.push(FieldError::invalid(&sel_path, meta::to_json(sel), "invalid label selector"));
        return (errs, None);
    }
    let matches =
        template.filter(|_| !meta::selector_is_empty(sel)).map(|t| meta::selector_matches(sel, template_labels(t)));
    (errs, matches)
}

/// `ValidateReplicaSet` / `ValidateReplicaSetUpdate` (apps/v1: the selector is immutable).
pub fn validate_replica_set(rs: &ReplicaSet, old: Option<&ReplicaSet>, has_selector: bool) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = match old {
        Some(old) => meta::validate_object_meta_update(&rs.metadata, &old.metadata, &meta_path),
        None => meta::validate_object_meta(&rs.metadata, true, v::name_is_dns_subdomain, &meta_path),
    };
    let spec = rs.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    errs.extend(meta::nonnegative(spec.replicas.unwrap_or(0).into(), &path.child("replicas")));
    errs.extend(meta::nonnegative(spec.min_ready_seconds.unwrap_or(0).into(), &path.child("minReadySeconds")));
    let (sel_errs, matches) = validate_selector(&spec.selector, has_selector, spec.template.as_ref(), &path);
    let selector_ok = !sel_errs.iter().any(|e| e.detail == "invalid label selector");
    errs.extend(sel_errs);
    if selector_ok {
        errs.extend(validate_template_for_controller(
            spec.template.as_ref(),
            matches,
            false,
            "ReplicaSet",
            &path.child("template"),
        ));
    }
    if let Some(old) = old {
        let old_sel = old.spec.as_ref().map(|sp| sp.selector.clone()).unwrap_or_default();
        errs.extend(meta::immutable(&spec.selector, &old_sel, &path.child("selector")));
    }
    errs
}

/// `ValidateDeployment` / `ValidateDeploymentUpdate` (apps/v1: the selector is immutable).
pub fn validate_deployment(d: &Deployment, old: Option<&Deployment>, has_selector: bool) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = match old {
        Some(old) => meta::validate_object_meta_update(&d.metadata, &old.metadata, &meta_path),
        None => meta::validate_object_meta(&d.metadata, true, v::name_is_dns_subdomain, &meta_path),
    };
    let spec = d.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    errs.extend(meta::nonnegative(spec.replicas.unwrap_or(0).into(), &path.child("replicas")));
    let (sel_errs, matches) = validate_selector(&spec.selector, has_selector, Some(&spec.template), &path);
    let selector_ok = !sel_errs.iter().any(|e| e.detail == "invalid label selector");
    errs.extend(sel_errs);
    if selector_ok {
        errs.extend(validate_template_for_controller(
            Some(&spec.template),
            matches,
            false,
            "ReplicaSet",
            &path.child("template"),
        ));
    }
    errs.extend(validate_strategy(spec.strategy.as_ref(), &path.child("strategy")));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(meta::nonnegative(min_ready.into(), &path.child("minReadySeconds")));
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(meta::nonnegative(limit.into(), &path.child("revisionHistoryLimit")));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        errs.extend(meta::nonnegative(deadline.into(), &path.child("progressDeadlineSeconds")));
        if deadline <= min_ready {
            errs.push(FieldError::invalid(
                &path.child("progressDeadlineSeconds"),
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    if let Some(old) = old {
        let old_sel = old.spec.as_ref().map(|sp| sp.selector.clone()).unwrap_or_default();
        errs.extend(meta::immutable(&spec.selector, &old_sel, &path.child("selector")));
    }
    errs
}

fn validate_strategy(strategy: Option<&DeploymentStrategy>, path: &Path) -> Vec<FieldError> {
    let strategy = strategy.cloned().unwrap_or_default();
    match s(&strategy.type_) {
        "Recreate" if strategy.rolling_update.is_some() => vec![FieldError::forbidden(
            &path.child("rollingUpdate"),
            "may not be specified when strategy `type` is 'Recreate'",
        )],
        "Recreate" => Vec::new(),
        "RollingUpdate" => match &strategy.rolling_update {
            None => {
                vec![FieldError::required(&path.child("rollingUpdate"), "this should be defaulted and never be nil")]
            }
            Some(ru) => validate_rolling_update(ru, &path.child("rollingUpdate")),
        },
        _ => vec![FieldError::not_supported(path, meta::to_json(&strategy), &["Recreate", "RollingUpdate"])],
    }
}

fn int_or_percent_value(v: &IntOrString) -> Option<(i64, bool)> {
    match v {
        IntOrString::Int(n) => Some(((*n).into(), false)),
        IntOrString::String(s) => s.strip_suffix('%').and_then(|d| d.parse().ok()).map(|n| (n, true)),
    }
}

fn validate_rolling_update(ru: &RollingUpdateDeployment, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let zero = IntOrString::Int(0);
    let unavailable = ru.max_unavailable.as_ref().unwrap_or(&zero);
    let surge = ru.max_surge.as_ref().unwrap_or(&zero);
    for (value, name) in [(unavailable, "maxUnavailable"), (surge, "maxSurge")] {
        let p = path.child(name);
        match value {
            IntOrString::String(text) => errs.extend(meta::each(&p, text.as_str(), v::is_valid_percent(text))),
            IntOrString::Int(n) => errs.extend(meta::nonnegative((*n).into(), &p)),
        }
    }
    let amount = |x: &IntOrString| int_or_percent_value(x).map_or(0, |(n, _)| n);
    if amount(unavailable) == 0 && amount(surge) == 0 {
        errs.push(FieldError::invalid(
            &path.child("maxUnavailable"),
            meta::to_json(unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    if let Some((n, true)) = int_or_percent_value(unavailable) {
        if n > 100 {
            errs.push(FieldError::invalid(
                &path.child("maxUnavailable"),
                meta::to_json(unavailable),
                "must not be greater than 100%",
            ));
        }
    }
    errs
}

/// Replica counts are non-negative and consistent with each other.
fn replica_counts(counts: &[(&str, i32)], observed_generation: Option<i64>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let get = |name: &str| counts.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v);
    for (name, value) in counts {
        errs.extend(meta::nonnegative((*value).into(), &path.child(name)));
    }
    errs.extend(meta::nonnegative(observed_generation.unwrap_or(0), &path.child("observedGeneration")));
    let replicas = get("replicas");
    for (name, value) in counts {
        if matches!(*name, "fullyLabeledReplicas" | "readyReplicas" | "availableReplicas" | "updatedReplicas")
            && *value > replicas
        {
            errs.push(FieldError::invalid(&path.child(name), *value, "cannot be greater than status.replicas"));
        }
    }
    if get("availableReplicas") > get("readyReplicas") {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            get("availableReplicas"),
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

pub fn validate_replication_controller_status(
    rc: &ReplicationController,
    old: &ReplicationController,
) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(&rc.metadata, &old.metadata, &Path::new("metadata"));
    let st = rc.status.clone().unwrap_or_default();
    errs.extend(replica_counts(
        &[
            ("replicas", st.replicas),
            ("fullyLabeledReplicas", st.fully_labeled_replicas.unwrap_or(0)),
            ("readyReplicas", st.ready_replicas.unwrap_or(0)),
            ("availableReplicas", st.available_replicas.unwrap_or(0)),
        ],
        st.observed_generation,
        &Path::new("status"),
    ));
    errs
}

pub fn validate_replica_set_status(rs: &ReplicaSet, old: &ReplicaSet) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(&rs.metadata, &old.metadata, &Path::new("metadata"));
    let st = rs.status.clone().unwrap_or_default();
    errs.extend(replica_counts(
        &[
            ("replicas", st.replicas),
            ("fullyLabeledReplicas", st.fully_labeled_replicas.unwrap_or(0)),
            ("readyReplicas", st.ready_replicas.unwrap_or(0)),
            ("availableReplicas", st.available_replicas.unwrap_or(0)),
            ("terminatingReplicas", st.terminating_replicas.unwrap_or(0)),
        ],
        st.observed_generation,
        &Path::new("status"),
    ));
    errs
}

pub fn validate_deployment_status(d: &Deployment, old: &Deployment) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update(&d.metadata, &old.metadata, &Path::new("metadata"));
    let st = d.status.clone().unwrap_or_default();
    let path = Path::new("status");
    errs.extend(replica_counts(
        &[
            ("replicas", st.replicas.unwrap_or(0)),
            ("updatedReplicas", st.updated_replicas.unwrap_or(0)),
            ("readyReplicas", st.ready_replicas.unwrap_or(0)),
            ("availableReplicas", st.available_replicas.unwrap_or(0)),
            ("unavailableReplicas", st.unavailable_replicas.unwrap_or(0)),
            ("terminatingReplicas", st.terminating_replicas.unwrap_or(0)),
        ],
        st.observed_generation,
        &path,
    ));
    if let Some(cc) = st.collision_count {
        errs.extend(meta::nonnegative(cc.into(), &path.child("collisionCount")));
    }
    let old_cc = old.status.as_ref().and_then(|s| s.collision_count);
    let decremented = match (st.collision_count, old_cc) {
        (None, Some(_)) => true,
        (Some(new), Some(old)) => new < old,
        _ => false,
    };
    if decremented {
        errs.push(FieldError::invalid(
            &path.child("collisionCount"),
            st.collision_count.unwrap_or(0),
            "cannot be decremented",
        ));
    }
    errs
}

#[cfg(test)]
mod tests;
