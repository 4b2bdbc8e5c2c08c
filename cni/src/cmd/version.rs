//! VERSION: which spec versions knet-cni speaks.

use serde_json::{json, Value};

use crate::version::{negotiate, SUPPORTED};

/// The VERSION answer to `stdin` (which may be empty, or hold `cniVersion` and/or `cniVersions`).
pub fn version(stdin: &[u8]) -> Value {
    let req: Value = serde_json::from_slice(stdin).unwrap_or(Value::Null);
    let asked = req.get("cniVersion").and_then(Value::as_str);
    let list: Vec<String> = req
        .get("cniVersions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    json!({"cniVersion": negotiate(asked, &list), "supportedVersions": SUPPORTED})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_the_asked_version() {
        assert_eq!(
            version(br#"{"cniVersion":"1.0.0"}"#),
            json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
        );
        assert_eq!(version(b"")["cniVersion"], json!("1.1.0"));
        assert_eq!(version(br#"{"cniVersions":["0.4.0","1.0.0"]}"#)["cniVersion"], json!("1.0.0"));
    }
}
