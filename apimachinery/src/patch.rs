//! Patches: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes' strategic
//! merge patch, applied to objects in their JSON form as kube-apiserver applies them.
//!
//! The strategic merge patch is what `kubectl apply`, `edit`, `label`, `annotate` and
//! `patch` send by default. It merges like a JSON merge patch, but lists whose field has the
//! `merge` patch strategy are merged element by element (by their merge key, or as sets
//! for lists of scalars) and the patch may carry directives (`$patch`, `$retainKeys`,
//! `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`). Which lists merge, and
//! by which key, comes from the [`PatchSchema`] of the object's kind ([`patch_schema`]).

use serde_json::Value;

mod gofmt;
mod json;
mod lists;
mod order;
mod schema;
mod strategic;
mod tags;

pub use gofmt::json_type_name;
pub use json::json_patch;
pub use schema::{patch_schema, FieldPatchMeta, PatchSchema, PatchStrategy};
pub use strategic::strategic_merge_patch;
pub use tags::{field_tags, FieldTags};

/// The most operations a JSON patch may have, as in kube-apiserver.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Why a patch could not be applied. The texts are kube-apiserver's where it has one;
/// [`PatchError::status_code`] is the HTTP status kube-apiserver answers with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document is malformed: not the JSON type the patch format needs, or a
    /// badly formed directive (400 Bad Request).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but cannot be applied to this object, e.g. a JSON patch
    /// `remove` of a missing path or list elements without their merge key
    /// (422 Unprocessable Entity).
    #[error("{0}")]
    Unprocessable(String),
    /// A JSON patch with more than [`MAX_JSON_PATCH_OPERATIONS`] operations (413).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations { max: usize, got: usize },
}

impl PatchError {
    /// The HTTP status code kube-apiserver uses for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::TooManyOperations { .. } => 413,
        }
    }
}

/// Applies a JSON merge patch (`application/merge-patch+json`, RFC 7386): objects merge
/// recursively, `null` deletes a key, anything else (lists included) replaces.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    let mut out = doc.clone();
    json_patch::merge(&mut out, patch);
    out
}

#[cfg(test)]
mod tests;
