//! Object metadata and label-selector validation shared by every kind, as kube-apiserver's
//! `ValidateObjectMeta`, `ValidateObjectMetaUpdate`, `ValidateLabels`, `ValidateAnnotations`
//! and `ValidateLabelSelector`, plus the small per-field helpers the kinds build on.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;
use serde::Serialize;
use serde_json::Value;

/// A name rule: the name and whether it is a `generateName` prefix → problems.
pub type NameFn = fn(&str, bool) -> Vec<String>;

/// `ValidateNonnegativeField`'s detail.
pub const NEGATIVE: &str = "must be greater than or equal to 0";
/// `ValidateImmutableField`'s detail.
pub const IMMUTABLE: &str = "field is immutable";
/// Largest total size of an object's annotations (keys + values).
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
/// Finalizer names that need no domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// One `Invalid` error per message, all about `value` at `path`.
pub fn each(path: &Path, value: impl Into<Value>, msgs: Vec<String>) -> Vec<FieldError> {
    let value = value.into();
    msgs.into_iter().map(|m| FieldError::invalid(path, value.clone(), m)).collect()
}

pub fn dns1123_label(value: &str, path: &Path) -> Vec<FieldError> {
    each(path, value, v::is_dns1123_label(value))
}

pub fn dns1123_subdomain(value: &str, path: &Path) -> Vec<FieldError> {
    each(path, value, v::is_dns1123_subdomain(value))
}

pub fn qualified_name(value: &str, path: &Path) -> Vec<FieldError> {
    each(path, value, v::is_qualified_name(value))
}

/// `validation.IsValidIP`.
pub fn ip(value: &str, path: &Path) -> Vec<FieldError> {
    each(path, value, v::is_valid_ip(value))
}

/// `validation.IsValidCIDR`.
pub fn cidr(value: &str, path: &Path) -> Vec<FieldError> {
    each(path, value, v::is_valid_cidr(value))
}

/// `ValidateNonSpecialIP`: no unspecified, loopback or link-local addresses.
pub fn non_special_ip(value: &str, path: &Path) -> Vec<FieldError> {
    each(path, value, v::non_special_ip_errors(value))
}

/// `ValidateNonnegativeField`.
pub fn nonnegative(value: i64, path: &Path) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(path, value, NEGATIVE)]
    } else {
        Vec::new()
    }
}

/// `ValidateImmutableField`: `Invalid value: <new>: field is immutable` when they differ.
pub fn immutable<T: PartialEq + Serialize>(new: &T, old: &T, path: &Path) -> Vec<FieldError> {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid(path, to_json(new), IMMUTABLE)]
    }
}

/// `ValidateImmutableField` for a string field (unset is Go's `""`).
pub fn immutable_str(new: &Option<String>, old: &Option<String>, path: &Path) -> Vec<FieldError> {
    let (n, o) = (new.as_deref().unwrap_or(""), old.as_deref().unwrap_or(""));
    if n == o {
        Vec::new()
    } else {
        vec![FieldError::invalid(path, n, IMMUTABLE)]
    }
}

/// A value as JSON for an error message (`null` if it cannot be encoded).
pub fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Metadata of a new object: name (or generateName), namespace, labels, annotations,
/// owner references, finalizers.
pub fn validate_object_meta(meta: &ObjectMeta, namespaced: bool, name_fn: NameFn, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(gen) = meta.generate_name.as_deref().filter(|g| !g.is_empty()) {
        errs.extend(each(&path.child("generateName"), gen, name_fn(gen, true)));
    }
    match meta.name.as_deref().filter(|n| !n.is_empty()) {
        None => errs.push(FieldError::required(&path.child("name"), "name or generateName is required")),
        Some(name) => errs.extend(each(&path.child("name"), name, name_fn(name, false))),
    }
    errs.extend(validate_meta_common(meta, namespaced, path));
    errs
}

fn validate_meta_common(meta: &ObjectMeta, namespaced: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let namespace = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            errs.extend(each(&path.child("namespace"), namespace, v::name_is_dns_label(namespace, false)));
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(&path.child("namespace"), "not allowed on this type"));
    }
    errs.extend(nonnegative(meta.generation.unwrap_or(0), &path.child("generation")));
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(meta.annotations.as_ref(), &path.child("annotations")));
    errs.extend(validate_owner_references(
        meta.owner_references.as_deref().unwrap_or(&[]),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(meta.finalizers.as_deref().unwrap_or(&[]), &path.child("finalizers")));
    errs
}

/// Metadata of an updated object against the stored one. The registry keeps
/// resourceVersion, uid, creationTimestamp and generation in step itself, so only what a
/// client can get wrong is checked here.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_f = old.finalizers.as_deref().unwrap_or(&[]);
        let mut extra: Vec<&String> =
            new.finalizers.iter().flatten().filter(|f| !old_f.contains(f)).collect::<Vec<_>>();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
            errs.push(FieldError::forbidden(
                &path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    errs.extend(immutable_str(&new.name, &old.name, &path.child("name")));
    errs.extend(immutable_str(&new.namespace, &old.namespace, &path.child("namespace")));
    if new.uid.as_deref().is_some_and(|u| !u.is_empty()) {
        errs.extend(immutable_str(&new.uid, &old.uid, &path.child("uid")));
    }
    errs.extend(validate_labels(new.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(new.annotations.as_ref(), &path.child("annotations")));
    errs.extend(validate_owner_references(
        new.owner_references.as_deref().unwrap_or(&[]),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(new.finalizers.as_deref().unwrap_or(&[]), &path.child("finalizers")));
    errs
}

/// `ValidateLabelName`: a label key is a qualified name.
pub fn validate_label_name(key: &str, path: &Path) -> Vec<FieldError> {
    qualified_name(key, path)
}

/// `ValidateLabels`: keys are qualified names, values label values. Errors carry the
/// map's path, as kube-apiserver's do.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, val) in labels.into_iter().flatten() {
        errs.extend(validate_label_name(k, path));
        errs.extend(each(path, val.as_str(), v::is_valid_label_value(val)));
    }
    errs
}

/// `ValidateAnnotations`: keys are (case-insensitive) qualified names; total size ≤ 256 KiB.
pub fn validate_annotations(annotations: Option<&BTreeMap<String, String>>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, val) in annotations.into_iter().flatten() {
        errs.extend(each(path, k.as_str(), v::is_qualified_name(&k.to_lowercase())));
        total += k.len() + val.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// Splits an apiVersion as `schema.ParseGroupVersion` does; `None` if malformed.
fn parse_group_version(api_version: &str) -> Option<(&str, &str)> {
    match api_version.matches('/').count() {
        0 => Some(("", api_version)),
        1 => api_version.split_once('/'),
        _ => None,
    }
}

fn validate_owner_references(refs: &[OwnerReference], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let (group, version) = parse_group_version(&r.api_version).unwrap_or(("", ""));
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(&path.child("kind"), r.kind.as_str(), "must not be empty"));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(&path.child("name"), r.name.as_str(), "must not be empty"));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(&path.child("uid"), r.uid.as_str(), "must not be empty"));
        }
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            errs.push(FieldError::invalid(path, to_json(r), "/v1, Kind=Event is disallowed from being an owner"));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    to_json(&refs),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// apimachinery's `ValidateFinalizers` plus core's rule that a finalizer without a
/// domain prefix must be one of the standard ones.
fn validate_finalizers(finalizers: &[String], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        errs.extend(qualified_name(f, path));
    }
    if finalizers.iter().any(|f| f == "orphan") && finalizers.iter().any(|f| f == "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            finalizers.to_vec(),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (i, f) in finalizers.iter().enumerate() {
        errs.extend(kube_finalizer_name(f, &path.index(i)));
    }
    errs
}

/// `validateKubeFinalizerName`.
pub fn kube_finalizer_name(name: &str, path: &Path) -> Vec<FieldError> {
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        vec![FieldError::invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified")]
    } else {
        Vec::new()
    }
}

/// `ValidateLabelSelector` (strict: label values in expressions are checked too).
pub fn validate_label_selector(sel: Option<&LabelSelector>, path: &Path) -> Vec<FieldError> {
    let Some(sel) = sel else { return Vec::new() };
    let mut errs = validate_labels(sel.match_labels.as_ref(), &path.child("matchLabels"));
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let values = req.values.as_deref().unwrap_or(&[]);
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        &p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(&p.child("operator"), other, "not a valid selector operator")),
        }
        errs.extend(validate_label_name(&req.key, &p.child("key")));
        for (j, value) in values.iter().enumerate() {
            errs.extend(each(&p.child("values").index(j), value.as_str(), v::is_valid_label_value(value)));
        }
    }
    errs
}

/// Whether a selector has no requirements at all (it would select everything).
pub fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(BTreeMap::is_empty) && sel.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// Whether `labels` satisfy `sel` (an invalid selector matches nothing).
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    knet_apimachinery::labels::from_label_selector(sel).is_ok_and(|s| s.matches(labels.unwrap_or(&empty)))
}

/// Whether a map selector (`spec.selector` of a ReplicationController) matches `labels`.
pub fn set_matches(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    knet_apimachinery::labels::Selector::from_set(selector).matches(labels.unwrap_or(&empty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta { name: Some(name.into()), namespace: ns.map(Into::into), ..Default::default() }
    }

    fn strings(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn names_namespaces_and_generate_name() {
        let p = Path::new("metadata");
        assert!(validate_object_meta(&meta("web", Some("default")), true, v::name_is_dns_subdomain, &p).is_empty());
        assert_eq!(
            strings(&validate_object_meta(&meta("web", None), true, v::name_is_dns_subdomain, &p)),
            ["metadata.namespace: Required value"]
        );
        assert_eq!(
            strings(&validate_object_meta(&meta("web", Some("x")), false, v::name_is_dns_subdomain, &p)),
            ["metadata.namespace: Forbidden: not allowed on this type"]
        );
        let m = ObjectMeta { namespace: Some("default".into()), ..Default::default() };
        assert_eq!(
            strings(&validate_object_meta(&m, true, v::name_is_dns_subdomain, &p)),
            ["metadata.name: Required value: name or generateName is required"]
        );
        let m = ObjectMeta {
            name: Some("web-abcde".into()),
            generate_name: Some("web-".into()),
            namespace: Some("default".into()),
            ..Default::default()
        };
        assert!(validate_object_meta(&m, true, v::name_is_dns_subdomain, &p).is_empty());
        let errs = strings(&validate_object_meta(&meta("Web", Some("default")), true, v::name_is_dns_subdomain, &p));
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain"));
    }

    #[test]
    fn labels_annotations_finalizers() {
        let p = Path::new("metadata");
        let mut m = meta("web", Some("default"));
        m.labels = Some(BTreeMap::from([("app".to_string(), "-bad".to_string())]));
        m.annotations = Some(BTreeMap::from([("Example.COM/Key".to_string(), "v".to_string())]));
        m.finalizers = Some(vec!["custom".into(), "example.com/ok".into(), "kubernetes".into()]);
        let errs = strings(&validate_object_meta(&m, true, v::name_is_dns_subdomain, &p));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("metadata.labels: Invalid value: \"-bad\": a valid label must be"));
        assert_eq!(
            errs[1],
            "metadata.finalizers[0]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
        );
        m.labels = None;
        m.finalizers = None;
        m.annotations = Some(BTreeMap::from([("a".to_string(), "x".repeat(300 * 1024))]));
        assert_eq!(
            strings(&validate_object_meta(&m, true, v::name_is_dns_subdomain, &p)),
            ["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn update_keeps_name() {
        let p = Path::new("metadata");
        let errs = validate_object_meta_update(&meta("b", Some("default")), &meta("a", Some("default")), &p);
        assert_eq!(strings(&errs), ["metadata.name: Invalid value: \"b\": field is immutable"]);
    }

    #[test]
    fn selectors() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        };
        let labels = BTreeMap::from([("app".to_string(), "web".to_string()), ("tier".to_string(), "b".to_string())]);
        assert!(selector_matches(&sel, Some(&labels)));
        assert!(!selector_matches(&sel, None));
        assert!(validate_label_selector(Some(&sel), &Path::new("spec").child("selector")).is_empty());
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: None,
            }]),
        };
        assert_eq!(
            strings(&validate_label_selector(Some(&bad), &Path::new("spec").child("selector"))),
            ["spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"]
        );
    }
}
