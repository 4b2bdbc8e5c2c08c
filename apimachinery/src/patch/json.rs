//! JSON patch (RFC 6902) as kube-apiserver applies it.
//!
//! The operations are applied by the `json-patch` crate; what is around them follows the
//! library kube-apiserver uses (evanphx/json-patch v4): the decoding errors, an unknown
//! `op` refused when applied, `test` of a missing member against `null` passing, and the
//! error texts.

use json_patch::{PatchErrorKind, PatchOperation};
use serde_json::Value;

use super::gofmt::json_type_name;
use super::{PatchError, MAX_JSON_PATCH_OPERATIONS};

const KNOWN_OPS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];

/// Applies a JSON patch (`application/json-patch+json`): a list of `add`, `remove`,
/// `replace`, `move`, `copy` and `test` operations, all or nothing.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Array(ops) = patch else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_type_name(patch)
        )));
    };
    if let Some(bad) = ops.iter().find(|op| !op.is_object()) {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
            json_type_name(bad)
        )));
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations { max: MAX_JSON_PATCH_OPERATIONS, got: ops.len() });
    }
    let mut out = doc.clone();
    for op in ops {
        apply_one(&mut out, op)?;
    }
    Ok(out)
}

fn apply_one(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let kind = op.get("op").and_then(Value::as_str).filter(|k| KNOWN_OPS.contains(k)).unwrap_or("unknown");
    if kind == "unknown" {
        let named = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
        return Err(PatchError::Unprocessable(format!("Unexpected kind: {named}")));
    }
    let path = op.get("path").and_then(Value::as_str);
    let from = op.get("from").and_then(Value::as_str).unwrap_or_default();
    let parsed: PatchOperation = serde_json::from_value(op.clone()).map_err(|e| {
        PatchError::Unprocessable(match path {
            None => format!("{kind} operation failed to decode path: missing value"),
            Some(_) => format!("{kind} operation is invalid: {e}"),
        })
    })?;
    let path = path.unwrap_or_default();
    // evanphx: testing a member that is not there against null passes.
    if let PatchOperation::Test(t) = &parsed {
        if t.value.is_null() && doc.pointer(path).is_none() && parent_exists(doc, path) {
            return Ok(());
        }
    }
    json_patch::patch(doc, std::slice::from_ref(&parsed)).map_err(|e| {
        PatchError::Unprocessable(match e.kind {
            PatchErrorKind::TestFailed => format!("testing value {path} failed: test failed"),
            PatchErrorKind::InvalidFromPointer => {
                format!("{kind} operation does not apply: doc is missing from path: {from}: missing value")
            }
            PatchErrorKind::InvalidPointer => match kind {
                "add" | "remove" => {
                    format!("{kind} operation does not apply: doc is missing path: \"{path}\": missing value")
                }
                "test" => format!("test operation does not apply: is missing path: {path}: missing value"),
                "move" | "copy" => {
                    format!("{kind} operation does not apply: doc is missing destination path: {path}: missing value")
                }
                _ => format!("{kind} operation does not apply: doc is missing path: {path}: missing value"),
            },
            other => format!("{kind} operation failed at path {path}: {other}"),
        })
    })
}

fn parent_exists(doc: &Value, path: &str) -> bool {
    path.rfind('/').is_some_and(|i| doc.pointer(&path[..i]).is_some_and(|p| p.is_object() || p.is_array()))
}
