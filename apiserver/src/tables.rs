//! Server-side Table output. (Interface stub: being implemented.)

use serde_json::{json, Value};

use crate::resources::ResourceInfo;

/// The `includeObject` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

pub fn table(_res: &ResourceInfo, objects: &[Value], list_meta: Value, _include: IncludeObject, _wide: bool) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| json!({"cells": [o.pointer("/metadata/name").cloned().unwrap_or_default()], "object": o}))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}],
        "rows": rows,
    })
}
