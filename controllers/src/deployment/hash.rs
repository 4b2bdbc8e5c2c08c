//! The pod-template hash that names a Deployment's ReplicaSets (`<deployment>-<hash>`) and labels their
//! pods (`pod-template-hash`), and template equality ignoring that label.
//!
//! Upstream hashes Go's dump of the template struct with FNV-32a and encodes the decimal number with
//! `rand.SafeEncodeString`. knet hashes a canonical JSON form of the template instead (keys sorted, empty
//! values dropped), so the hash is stable across restarts and versions and changes with the template; the
//! encoding is upstream's, so names look the same (`web-7c5ddbdf54`).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Map, Value};

/// The label that tells a Deployment's ReplicaSets (and their pods) apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The characters `rand.SafeEncodeString` maps to (no vowels, no look-alikes).
const SAFE_ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Sorts object keys and drops nulls, empty arrays and empty objects, recursively, so that equal templates
/// have equal forms whatever their field order and however absent fields were written.
fn canonical(v: Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().map(|i| canonical(i).unwrap_or(Value::Null)).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> =
                map.into_iter().filter_map(|(k, v)| canonical(v).map(|v| (k, v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            (!entries.is_empty()).then(|| Value::Object(entries.into_iter().collect::<Map<String, Value>>()))
        }
        v => Some(v),
    }
}

fn canonical_template(t: &PodTemplateSpec) -> Value {
    serde_json::to_value(t).ok().and_then(canonical).unwrap_or(Value::Null)
}

/// FNV-1a, 32 bits.
fn fnv32a(data: &[u8], mut hash: u32) -> u32 {
    for b in data {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// `rand.SafeEncodeString`.
fn safe_encode(s: &str) -> String {
    s.bytes().map(|b| char::from(SAFE_ALPHANUMS[usize::from(b) % SAFE_ALPHANUMS.len()])).collect()
}

/// `controller.ComputeHash`: the hash of `template`, salted with the Deployment's `collisionCount`.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let text = canonical_template(template).to_string();
    let mut hash = fnv32a(text.as_bytes(), 0x811c_9dc5);
    if let Some(c) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&c.to_le_bytes());
        hash = fnv32a(&bytes, hash);
    }
    safe_encode(&hash.to_string())
}

fn without_hash_label(t: &PodTemplateSpec) -> Value {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(POD_TEMPLATE_HASH);
    }
    canonical_template(&t)
}

/// `EqualIgnoreHash`: the templates are semantically equal once the `pod-template-hash` label is ignored.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash_label(a) == without_hash_label(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::util::tests::template;
    use proptest::prelude::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv32a(b"", 0x811c_9dc5), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a", 0x811c_9dc5), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar", 0x811c_9dc5), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_is_upstreams() {
        // '0'..'9' map to "4", "5", "6", "7", "8", "9", "b", "c", "d", "f".
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
    }

    #[test]
    fn hash_is_stable_and_follows_the_template() {
        let t = template("nginx:1");
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t.clone(), None));
        assert!(h.bytes().all(|b| SAFE_ALPHANUMS.contains(&b)) && !h.is_empty() && h.len() <= 10);
        assert_ne!(h, compute_hash(&template("nginx:2"), None));
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert_ne!(compute_hash(&t, Some(1)), compute_hash(&t, Some(2)));
    }

    #[test]
    fn equality_ignores_the_hash_label_and_empty_fields() {
        let a = template("nginx:1");
        let mut b = a.clone();
        b.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert(POD_TEMPLATE_HASH.into(), "abc".into());
        b.metadata.as_mut().unwrap().annotations = Some(Default::default());
        b.spec.as_mut().unwrap().volumes = Some(Vec::new());
        assert!(equal_ignore_hash(&a, &b));
        assert_eq!(
            compute_hash(&a, None),
            compute_hash(
                &{
                    let mut c = a.clone();
                    c.spec.as_mut().unwrap().volumes = Some(Vec::new());
                    c
                },
                None
            )
        );
        assert!(!equal_ignore_hash(&a, &template("nginx:2")));
        let mut c = a.clone();
        c.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert("other".into(), "x".into());
        assert!(!equal_ignore_hash(&a, &c));
    }

    proptest! {
        /// Any image gives a hash of safe characters that is a function of the template alone.
        #[test]
        fn hashes_are_functions_of_the_template(image in "[a-z0-9:./-]{1,30}", n in proptest::option::of(0i32..100)) {
            let t = template(&image);
            let h = compute_hash(&t, n);
            prop_assert_eq!(&h, &compute_hash(&t, n));
            prop_assert!(h.bytes().all(|b| SAFE_ALPHANUMS.contains(&b)));
            prop_assert!(equal_ignore_hash(&t, &t.clone()));
        }
    }
}
