//! Strategic merge patch: the order of merged lists, and `$setElementOrder`.
//!
//! A merged list keeps the relative order of the patch's elements and of the elements only
//! the server has, interleaved as they were in the live list (`normalizeElementOrder`).
//! `$setElementOrder/<field>` lists the merge keys (or values) in their new order, as
//! `kubectl apply` sends it, and takes precedence over the patch list's own order.

use std::collections::HashMap;

use serde_json::Value;

use super::gofmt::go_list;
use super::lists::{as_map, element_kind, is_delete_element, merge_list_field, partition, Kind};
use super::schema::{PatchSchema, PatchStrategy};
use super::strategic::{
    err_bad_arg_type, err_no_merge_key, extract_key, remove_directives, remove_key, Map, DELETE_DIRECTIVE,
    DIRECTIVE_MARKER, LIST_TYPE, SET_ELEMENT_ORDER_PREFIX,
};
use super::PatchError;

/// What identifies an element: its merge key value for objects, itself otherwise, as a
/// string to index by (`None` when an object has no merge key, which Go compares as `nil`).
fn identity(v: &Value, merge_key: &str, kind: Kind) -> String {
    let id = if kind == Kind::Map { v.as_object().and_then(|m| m.get(merge_key)) } else { Some(v) };
    id.map_or_else(|| "\u{0}nil".to_string(), Value::to_string)
}

/// The first position of each element of `list`, by [`identity`] (Go's `index`).
struct Positions(HashMap<String, usize>);

impl Positions {
    fn of(list: &[Value], merge_key: &str, kind: Kind) -> Self {
        let mut map = HashMap::with_capacity(list.len());
        for (i, v) in list.iter().enumerate() {
            map.entry(identity(v, merge_key, kind)).or_insert(i);
        }
        Positions(map)
    }

    fn get(&self, v: &Value, merge_key: &str, kind: Kind) -> Option<usize> {
        self.0.get(&identity(v, merge_key, kind)).copied()
    }
}

/// Orders the patch's elements by `patch_order`, the server's by `server_order`, and
/// interleaves them (`normalizeElementOrder`).
pub(super) fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let patch_items = sort_by_order(patch_items, patch_order, merge_key, kind)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, kind)?;
    Ok(interleave(server_only, patch_items, server_order, merge_key, kind))
}

/// Sorts `items` by their place in `order`, deletion directives last (`normalizeSliceOrder`).
fn sort_by_order(items: Vec<Value>, order: &[Value], merge_key: &str, kind: Kind) -> Result<Vec<Value>, PatchError> {
    let (keep, deletes): (Vec<Value>, Vec<Value>) = if kind == Kind::Map {
        for v in items.iter().chain(order.iter()) {
            let m = as_map(v)?;
            if !m.contains_key(merge_key) {
                return Err(err_no_merge_key(m, merge_key));
            }
        }
        items.into_iter().partition(|v| !is_delete_element(v))
    } else {
        (items, Vec::new())
    };
    let positions = Positions::of(order, merge_key, kind);
    let mut keyed: Vec<(Option<usize>, Value)> =
        keep.into_iter().map(|v| (positions.get(&v, merge_key, kind), v)).collect();
    if keyed.iter().all(|(p, _)| p.is_some()) {
        keyed.sort_by_key(|(p, _)| *p);
    } else if keyed.len() <= 20 {
        go_insertion_sort(&mut keyed);
    } else {
        // Missing elements first, latest first, as the insertion sort tends to put them.
        let (mut missing, mut found): (Vec<_>, Vec<_>) = keyed.into_iter().partition(|(p, _)| p.is_none());
        missing.reverse();
        found.sort_by_key(|(p, _)| *p);
        missing.extend(found);
        keyed = missing;
    }
    let mut sorted: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    sorted.extend(deletes);
    Ok(sorted)
}

/// Kubernetes sorts with `sort.SliceStable` and a comparator under which an element missing
/// from the order is "less" than anything; Go's stable sort is an insertion sort for up to
/// 20 elements, which moves such elements to the front. This does the same. (Longer lists
/// with such elements, which only odd patches make, e.g. with an empty `$setElementOrder`
/// list, are ordered close to but not always as Go's block merge sort would.)
fn go_insertion_sort(items: &mut [(Option<usize>, Value)]) {
    let less = |a: Option<usize>, b: Option<usize>| match (a, b) {
        (Some(a), Some(b)) => a < b,
        _ => true,
    };
    for i in 1..items.len() {
        let mut j = i;
        while j > 0 && less(items[j].0, items[j - 1].0) {
            items.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// Merges two sorted lists, placing each server-only element (`left`) before the first
/// patch element (`right`) that comes after it in the live list (`mergeSortedSlice`).
fn interleave(left: Vec<Value>, right: Vec<Value>, server_order: &[Value], merge_key: &str, kind: Kind) -> Vec<Value> {
    let positions = Positions::of(server_order, merge_key, kind);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (positions.get(l, merge_key, kind), positions.get(r, merge_key, kind)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
    out
}

/// Applies the `$setElementOrder/<field>` directives of `patch` (`mergePatchIntoOriginal`):
/// merges the field's list, orders it, and takes the list out of the patch.
pub(super) fn apply_set_element_order(
    original: &mut Map,
    patch: &mut Map,
    schema: &PatchSchema,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX)).cloned().collect();
    for key in keys {
        let Some(order) = remove_key(patch, &key) else { continue };
        let Value::Array(order) = order else {
            return Err(err_bad_arg_type(LIST_TYPE, &order));
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER_PREFIX)?;
        let list = |m: &Map| match m.get(&field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.clone())),
            Some(other) => Err(err_bad_arg_type(LIST_TYPE, other)),
        };
        let (original_list, patch_list) = (list(original)?, list(patch)?);
        let meta = schema.field(&field);
        let merge_key = meta.merge_key.unwrap_or("");
        check_order_matches_patch(patch_list.as_deref().unwrap_or_default(), &order, merge_key)?;
        let merged = match (original_list.clone(), patch_list.clone()) {
            (Some(o), None) => o,
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(items)) => items,
                _ => continue,
            },
            (Some(o), Some(p)) => merge_list_field(o, p, &meta, false)?,
            (None, None) => continue,
        };
        let (patch_items, server_only) = partition(merged, &order, merge_key)?;
        let original_list = original_list.unwrap_or_default();
        let patch_list = patch_list.unwrap_or_default();
        let kind = element_kind(&[&original_list, &patch_list])?;
        let server_order = if meta.strategy == PatchStrategy::Merge && kind == Kind::Map {
            go_aliased_original(&original_list, &patch_list, merge_key)
        } else {
            original_list
        };
        let ordered = normalize_element_order(patch_items, server_only, &order, &server_order, merge_key, kind)?;
        original.insert(field.clone(), Value::Array(ordered));
        remove_key(patch, &field);
    }
    Ok(())
}

/// The live list as Kubernetes sees it when it orders a merged list: in Go, merging deletes
/// elements by shifting the rest left and appends new ones in the same backing array, and
/// the live list it orders by shares that array. So the live list seen there is the first
/// `len` slots of that array: the elements left after the deletions, then the first
/// appended ones, then stale copies. It only matters for where server-only elements go
/// relative to the patch's when a patch both deletes and adds elements.
fn go_aliased_original(original: &[Value], patch: &[Value], merge_key: &str) -> Vec<Value> {
    let mut view = original.to_vec();
    let mut current = original.to_vec();
    let key_of = |v: &Value| v.get(merge_key).cloned();
    let mut replace = false;
    for v in patch {
        match v.get(DIRECTIVE_MARKER).and_then(Value::as_str) {
            Some(DELETE_DIRECTIVE) => {
                let Some(key) = key_of(v) else { continue };
                while let Some(i) = current.iter().position(|o| key_of(o).as_ref() == Some(&key)) {
                    current.remove(i);
                    // `append(s[:i], s[i+1:]...)`: the tail moves left in place and the slot
                    // after it keeps its old value.
                    for (slot, v) in view.iter_mut().zip(current.iter()).skip(i) {
                        *slot = v.clone();
                    }
                }
            }
            Some(_) => replace = true,
            None => {}
        }
    }
    if replace {
        return view;
    }
    for v in patch.iter().filter(|v| v.get(DIRECTIVE_MARKER).is_none()) {
        let key = key_of(v);
        if current.iter().any(|o| key_of(o) == key) {
            continue;
        }
        if current.len() < view.len() {
            view[current.len()] = v.clone();
        }
        current.push(v.clone());
    }
    view
}

/// The patch list's elements must appear in the `$setElementOrder` list, in the same order
/// (`validatePatchWithSetOrderList`).
fn check_order_matches_patch(patch_list: &[Value], order: &[Value], merge_key: &str) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut items = Vec::with_capacity(patch_list.len());
    for v in patch_list {
        if !merge_key.is_empty() {
            as_map(v)?;
            if is_delete_element(v) {
                continue;
            }
        }
        items.push(v);
    }
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if items[pi].get(DIRECTIVE_MARKER).is_some() {
            pi += 1;
            continue;
        }
        if same_merge_key(items[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() && oi >= order.len() {
        return Err(PatchError::BadRequest(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            go_list(patch_list),
            go_list(order)
        )));
    }
    Ok(())
}

fn same_merge_key(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let (l, r) = (as_map(left)?, as_map(right)?);
    let lv = l.get(merge_key).ok_or_else(|| err_no_merge_key(l, merge_key))?;
    let rv = r.get(merge_key).ok_or_else(|| err_no_merge_key(r, merge_key))?;
    Ok(lv == rv)
}
