//! OpenAPI documents. (Interface stub: being implemented.)

use bytes::Bytes;
use serde_json::{json, Value};

pub fn v3_root() -> Value {
    json!({"paths": {}})
}
pub fn v3_document(_path: &str) -> Option<Bytes> {
    None
}
pub fn v2_document() -> Bytes {
    Bytes::from_static(b"{}")
}
