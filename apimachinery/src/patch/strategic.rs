//! Strategic merge patch: merging objects, and the directives found in objects.
//!
//! This follows `strategicpatch.StrategicMergeMapPatch` as kube-apiserver runs it (parallel
//! lists merged, unmatched `null`s dropped): the same results, the same directives, the same
//! error texts. Where Go would panic on odd input (a `null` list element, an object as merge
//! key value) this returns a result or an error instead.

use serde_json::Value;

use super::gofmt::{go_map, go_type, go_v, json_type_name};
use super::schema::{PatchSchema, PatchStrategy};
use super::PatchError;
use super::{lists, order};

pub(super) type Map = serde_json::Map<String, Value>;

/// `$patch`: `replace`, `delete` (in objects and list elements) or `merge`.
pub(super) const DIRECTIVE_MARKER: &str = "$patch";
pub(super) const DELETE_DIRECTIVE: &str = "delete";
pub(super) const REPLACE_DIRECTIVE: &str = "replace";
pub(super) const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
pub(super) const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

pub(super) fn err_bad_patch_type(directive: &Value, m: &Map) -> PatchError {
    PatchError::BadRequest(format!("unknown patch type: {} in map: {}", go_v(directive), go_map(m)))
}

pub(super) fn err_no_merge_key(m: &Map, key: &str) -> PatchError {
    PatchError::Unprocessable(format!("map: {} does not contain declared merge key: {key}", go_map(m)))
}

pub(super) fn err_bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    PatchError::Unprocessable(format!("expected a {expected}, but received a {}", go_type(actual)))
}

pub(super) const MAP_TYPE: &str = "map[string]interface {}";
pub(super) const LIST_TYPE: &str = "[]interface {}";

/// Applies a strategic merge patch (`application/strategic-merge-patch+json`) to an object,
/// using the schema of the object's kind ([`super::patch_schema`]).
///
/// Objects merge recursively and `null` deletes a key. Lists whose field has the `merge`
/// strategy merge: lists of objects by merge key (an element `{"<key>": v, "$patch":
/// "delete"}` removes an element, `{"$patch": "replace"}` makes the patch list replace the
/// list), lists of scalars as sets (`$deleteFromPrimitiveList/<field>` lists the values to
/// remove). `$setElementOrder/<field>` gives the order of the merged list, `$retainKeys`
/// the keys of an object to keep, `"$patch": "replace"` / `"delete"` in an object replaces
/// or clears it. Other lists are replaced.
pub fn strategic_merge_patch(doc: &Value, patch: &Value, schema: &PatchSchema) -> Result<Value, PatchError> {
    let Value::Object(original) = doc else {
        return Err(PatchError::BadRequest("invalid JSON document".to_string()));
    };
    let patch = match patch {
        Value::Object(p) => p.clone(),
        // Go decodes `null` into a nil map: nothing to do.
        Value::Null => Map::new(),
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type_name(other)
            )))
        }
    };
    merge_map(original.clone(), patch, schema).map(Value::Object)
}

/// Merges `patch` into `original` (`mergeMap`).
pub(super) fn merge_map(mut original: Map, mut patch: Map, schema: &PatchSchema) -> Result<Map, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER).cloned() {
        return directive_in_map(&directive, patch);
    }
    apply_retain_keys(&mut original, &mut patch)?;
    order::apply_set_element_order(&mut original, &mut patch, schema)?;

    for (k, patch_v) in patch {
        let (key, is_delete_list) = if k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            (extract_key(&k, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?, true)
        } else {
            (k, false)
        };
        if patch_v.is_null() {
            remove_key(&mut original, &key);
            continue;
        }
        let Some(original_v) = original.get_mut(&key) else {
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_v);
            }
            continue;
        };
        if go_type(original_v) != go_type(&patch_v) {
            if !is_delete_list {
                set_from_patch(&mut original, key, patch_v);
            }
            continue;
        }
        let meta = schema.field(&key);
        match (original_v.take(), patch_v) {
            (Value::Object(o), Value::Object(p)) => {
                *original_v = Value::Object(if meta.strategy == PatchStrategy::Replace {
                    p
                } else {
                    merge_map(o, p, meta.schema)?
                });
            }
            (Value::Array(o), Value::Array(p)) => {
                *original_v = Value::Array(lists::merge_list_field(o, p, &meta, is_delete_list)?);
            }
            (_, p) => match remove_directives(p) {
                Some(v) => *original_v = v,
                None => {
                    remove_key(&mut original, &key);
                }
            },
        }
    }
    Ok(original)
}

/// A value the original does not have (or has with another type) is taken from the patch,
/// without its `null`s and directive objects.
fn set_from_patch(original: &mut Map, key: String, mut v: Value) {
    discard_nulls(&mut v);
    match remove_directives(v) {
        Some(v) => {
            original.insert(key, v);
        }
        None => {
            remove_key(original, &key);
        }
    }
}

/// `"$patch": "replace"` keeps the patch object as it is, `"$patch": "delete"` empties it.
fn directive_in_map(directive: &Value, mut patch: Map) -> Result<Map, PatchError> {
    match directive.as_str() {
        Some(REPLACE_DIRECTIVE) => {
            remove_key(&mut patch, DIRECTIVE_MARKER);
            Ok(patch)
        }
        Some(DELETE_DIRECTIVE) => Ok(Map::new()),
        _ => Err(err_bad_patch_type(directive, &patch)),
    }
}

/// `$retainKeys: [a, b]`: drop the original's other keys; every key the patch sets must be
/// in the list.
fn apply_retain_keys(original: &mut Map, patch: &mut Map) -> Result<(), PatchError> {
    let Some(retain) = remove_key(patch, RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let bad_format = || PatchError::BadRequest("invalid patch format of retainKeys".to_string());
    let Value::Array(retain) = retain else {
        return Err(bad_format());
    };
    let retained = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) || k.starts_with(SET_ELEMENT_ORDER_PREFIX) {
            continue;
        }
        if !retained(k) {
            return Err(bad_format());
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// The field a `$prefix/field` directive is about.
pub(super) fn extract_key(s: &str, prefix: &str) -> Result<String, PatchError> {
    match s.split_once('/') {
        Some((p, key)) if p == prefix => Ok(key.to_string()),
        _ => Err(PatchError::BadRequest(
            match prefix {
                DELETE_FROM_PRIMITIVE_LIST_PREFIX => "invalid patch format of primitive list",
                _ => "invalid patch format of setElementOrder list",
            }
            .to_string(),
        )),
    }
}

/// Drops objects that carry `$patch` (and list elements that are such objects); `None` when
/// the value itself is one.
pub(super) fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) if m.contains_key(DIRECTIVE_MARKER) => None,
        Value::Object(m) => {
            Some(Value::Object(m.into_iter().filter_map(|(k, v)| Some((k, remove_directives(v)?))).collect()))
        }
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(remove_directives).collect())),
        other => Some(other),
    }
}

/// Removes `null` members of objects, at every depth.
fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Removes a key keeping the order of the others.
pub(super) fn remove_key(m: &mut Map, key: &str) -> Option<Value> {
    let mut removed = None;
    m.retain(|k, v| {
        if k == key {
            removed = Some(v.take());
            false
        } else {
            true
        }
    });
    removed
}
