//! Strategic merge patch: merging lists and the directives in list elements.
//!
//! Lists of objects merge by merge key (`$patch: delete` and `$patch: replace` elements
//! act on the whole list), lists of scalars as sets; the result is ordered by
//! [`super::order`].

use serde_json::Value;

use super::gofmt::go_list;
use super::order::normalize_element_order;
use super::schema::{FieldPatchMeta, PatchSchema, PatchStrategy};
use super::strategic::{
    err_bad_arg_type, err_bad_patch_type, err_no_merge_key, merge_map, Map, DELETE_DIRECTIVE, DIRECTIVE_MARKER,
    MAP_TYPE, MERGE_DIRECTIVE, REPLACE_DIRECTIVE,
};
use super::PatchError;

/// The type of list elements, as Go's `reflect.Type` of decoded JSON tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Null,
    Bool,
    Int,
    Float,
    String,
    List,
    Map,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Int,
        Value::Number(_) => Kind::Float,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::List,
        Value::Object(_) => Kind::Map,
    }
}

/// The one element type of the lists (`sliceElementType`).
pub(super) fn element_kind(lists: &[&[Value]]) -> Result<Kind, PatchError> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = kind_of(v);
        match kind {
            None if k == Kind::List => {
                return Err(PatchError::Unprocessable("lists of lists are not supported".to_string()))
            }
            None => kind = Some(k),
            Some(prev) if prev != k => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(PatchError::Unprocessable(format!(
                    "list element types are not identical: {}",
                    go_list(&all)
                )));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| PatchError::Unprocessable("no elements in any of the given slices".to_string()))
}

pub(super) fn as_map(v: &Value) -> Result<&Map, PatchError> {
    v.as_object().ok_or_else(|| err_bad_arg_type(MAP_TYPE, v))
}

pub(super) fn is_delete_element(v: &Value) -> bool {
    v.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE)
}

/// Merges a list field (`mergeSliceHandler`): lists with the merge strategy, and
/// `$deleteFromPrimitiveList` lists, are merged; others are replaced by the patch.
pub(super) fn merge_list_field(
    original: Vec<Value>,
    patch: Vec<Value>,
    meta: &FieldPatchMeta,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if meta.strategy == PatchStrategy::Merge || is_delete_list {
        merge_list(original, patch, meta.schema, meta.merge_key.unwrap_or(""), is_delete_list)
    } else {
        Ok(patch)
    }
}

/// `mergeSlice`.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    schema: &PatchSchema,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch])?;
    let (server_order, patch_order, merged) = if kind != Kind::Map {
        if is_delete_list {
            return Ok(original.into_iter().filter(|v| !patch.contains(v)).collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(PatchError::Unprocessable("cannot merge lists without merge key for struct".to_string()));
        }
        let (original, patch) = apply_element_directives(original, patch, merge_key)?;
        let merged = merge_elements(original.clone(), &patch, merge_key, schema)?;
        (original, patch, merged)
    };
    let (patch_items, server_only) = partition(merged, &patch_order, merge_key)?;
    normalize_element_order(patch_items, server_only, &patch_order, &server_order, merge_key, kind)
}

/// Handles the elements carrying `$patch` (`mergeSliceWithSpecialElements`): deletions
/// remove the original's elements with that key, `replace` makes the rest of the patch
/// the whole list. Returns the original and the patch without those elements.
fn apply_element_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for v in patch {
        let m = as_map(&v)?;
        let Some(directive) = m.get(DIRECTIVE_MARKER) else {
            plain.push(v);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let key_value = m.get(merge_key).ok_or_else(|| err_no_merge_key(m, merge_key))?;
                while let Some(i) = find_by_key(&original, merge_key, key_value)? {
                    original.remove(i);
                }
            }
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(PatchError::BadRequest("merging lists cannot yet be specified in the patch".to_string()))
            }
            _ => return Err(err_bad_patch_type(directive, m)),
        }
    }
    Ok(if replace { (plain, Vec::new()) } else { (original, plain) })
}

/// Merges each patch element into the original element with the same merge key, or appends
/// it (`mergeSliceWithoutSpecialElements`).
fn merge_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    schema: &PatchSchema,
) -> Result<Vec<Value>, PatchError> {
    for v in patch {
        let m = as_map(v)?;
        let key_value = m.get(merge_key).ok_or_else(|| err_no_merge_key(m, merge_key))?;
        match find_by_key(&original, merge_key, key_value)? {
            Some(i) => {
                // `find_by_key` only finds objects.
                if let Value::Object(o) = &mut original[i] {
                    *o = merge_map(std::mem::take(o), m.clone(), schema)?;
                }
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

/// The index of the first object whose `key` is `value` (`findMapInSliceBasedOnKeyValue`).
fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, PatchError> {
    for (i, v) in list.iter().enumerate() {
        let Some(m) = v.as_object() else {
            return Err(PatchError::Unprocessable(format!("value for key {i} is not a map")));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Splits merged elements into those present in `by` (by merge key for objects, by value
/// for scalars) and the others.
pub(super) fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let (mut present, mut absent) = (Vec::new(), Vec::new());
    for v in merged {
        let found = if merge_key.is_empty() {
            by.contains(&v)
        } else {
            let m = as_map(&v)?;
            let key_value = m.get(merge_key).ok_or_else(|| err_no_merge_key(m, merge_key))?;
            find_by_key(by, merge_key, key_value)?.is_some()
        };
        if found {
            present.push(v);
        } else {
            absent.push(v);
        }
    }
    Ok((present, absent))
}
