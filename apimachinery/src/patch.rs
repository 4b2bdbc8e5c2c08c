//! Patches. (Interface stub: being implemented.)

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);

pub struct PatchSchema;

static SCHEMA: PatchSchema = PatchSchema;

pub fn json_patch(_doc: &Value, _patch: &Value) -> Result<Value, PatchError> {
    Err(PatchError("json patch is not implemented yet".into()))
}

pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    let mut d = doc.clone();
    json_patch::merge(&mut d, patch);
    d
}

pub fn strategic_merge_patch(doc: &Value, patch: &Value, _schema: &PatchSchema) -> Result<Value, PatchError> {
    Ok(merge_patch(doc, patch))
}

pub fn patch_schema(_api_version: &str, _kind: &str) -> Option<&'static PatchSchema> {
    Some(&SCHEMA)
}
