//! Checks of incoming objects: type meta against the URL, and unknown fields
//! (`fieldValidation=Strict|Warn`), found by a round-trip through the k8s-openapi type.

use serde_json::Value;

use super::FieldValidation;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::with_type;

/// Fills `apiVersion`/`kind` when missing; rejects a body of another kind or version.
pub fn check_type_meta(res: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let Some(o) = obj.as_object_mut() else {
        return Err(ApiError::BadRequest(format!(
            "{} in version {:?} cannot be handled as a {}: the body must be a JSON object",
            res.kind, res.version, res.kind
        )));
    };
    let want_av = res.api_version();
    match o.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            o.insert("apiVersion".into(), Value::String(want_av.clone()));
        }
        Some(av) if av == want_av => {}
        Some(av) => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({av}) does not match the expected API version ({want_av})"
            )))
        }
    }
    match o.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            o.insert("kind".into(), Value::String(res.kind.into()));
        }
        Some(k) if k == res.kind => {}
        Some(k) => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                res.kind
            )))
        }
    }
    match o.get("metadata") {
        None | Some(Value::Null) => {
            o.insert("metadata".into(), Value::Object(Default::default()));
        }
        Some(Value::Object(_)) => {}
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "{} in version {:?} cannot be handled as a {}: metadata must be an object",
                res.kind, res.version, res.kind
            )))
        }
    }
    Ok(())
}

/// How deep flow collections (`[`, `{`) may nest in a YAML body: the YAML decoder's own recursion limit,
/// so nothing it could decode is refused.
pub const MAX_YAML_FLOW_DEPTH: usize = 128;

/// Whether a YAML text opens flow collections deeper than `limit`, counted outside quoted scalars and
/// comments (brackets inside block scalars count too: an upper bound, cheap to compute).
///
/// The YAML scanner (libyaml) looks ahead through a flow collection that may be a simple key and checks
/// every open level at each token, so a body of nothing but `[[[[…` costs time quadratic in its size
/// (100 KB ≈ 30 s of a server thread) before any depth limit applies: such bodies are refused first.
pub fn yaml_flow_too_deep(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    // The last character that was not a space: a quote only opens a scalar where a scalar may start.
    let mut last = b'\n';
    let mut prev = b'\n';
    while let Some(&b) = text.get(i) {
        match b {
            b'#' if prev.is_ascii_whitespace() => {
                while text.get(i).is_some_and(|c| *c != b'\n') {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' if matches!(last, b'\n' | b':' | b',' | b'[' | b'{' | b'-' | b'?') => {
                i += 1;
                while let Some(&c) = text.get(i) {
                    i += 1;
                    match (b, c) {
                        (b'"', b'\\') => i += 1,
                        (b'\'', b'\'') if text.get(i) == Some(&b'\'') => i += 1,
                        _ if c == b => break,
                        _ => {}
                    }
                }
                last = b;
                prev = b;
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if !matches!(b, b' ' | b'\t' | b'\r') {
            last = b;
        }
        prev = b;
        i += 1;
    }
    false
}

/// Paths of fields in `original` that the typed decoding dropped.
fn dropped_fields(original: &Value, roundtrip: &Value, path: &str, out: &mut Vec<String>) {
    match (original, roundtrip) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                match b.get(k) {
                    Some(w) => dropped_fields(v, w, &p, out),
                    None if v.is_null() => {}
                    None => {
                        // Empty maps and lists may be omitted by the typed encoding.
                        let empty = matches!(v, Value::Object(m) if m.is_empty())
                            || matches!(v, Value::Array(l) if l.is_empty());
                        if !empty {
                            out.push(p);
                        }
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b.iter()).enumerate() {
                dropped_fields(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Decodes `obj` as the resource's type; returns the unknown fields found, or the
/// decode error kube-apiserver would answer (400).
pub fn decode_typed(res: &ResourceInfo, obj: &Value) -> Result<Vec<String>, ApiError> {
    let cannot = |e: String| {
        ApiError::BadRequest(format!(
            "{} in version {:?} cannot be handled as a {}: {e}",
            res.kind, res.version, res.kind
        ))
    };
    let roundtrip: Result<Value, String> = with_type!(res, T => {
        serde_json::from_value::<T>(obj.clone())
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::to_value(&t).map_err(|e| e.to_string()))
    })
    .unwrap_or_else(|| Err(format!("no type for {}", res.plural)));
    let roundtrip = roundtrip.map_err(cannot)?;
    let mut unknown = Vec::new();
    dropped_fields(obj, &roundtrip, "", &mut unknown);
    Ok(unknown)
}

/// Applies the field validation mode: `Strict` rejects unknown fields, `Warn`
/// returns them as warnings, `Ignore` drops them silently.
pub fn field_validation(res: &ResourceInfo, obj: &Value, mode: FieldValidation) -> Result<Vec<String>, ApiError> {
    let unknown = decode_typed(res, obj)?;
    let msgs: Vec<String> = unknown.iter().map(|f| format!("unknown field {f:?}")).collect();
    match mode {
        FieldValidation::Strict if !msgs.is_empty() => Err(ApiError::BadRequest(format!(
            "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
            res.kind,
            res.version,
            res.kind,
            msgs.join(", ")
        ))),
        FieldValidation::Warn => Ok(msgs),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_and_bad_types() {
        let svc = resources::find("", "v1", "services").unwrap();
        let obj = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "labels": {}},
            "spec": {"portz": [1], "ports": [{"port": 80, "targetPort": "http", "bogus": 1}], "selector": {"app": "a"}}});
        let unknown = decode_typed(svc, &obj).unwrap();
        assert_eq!(unknown, vec!["spec.portz".to_string(), "spec.ports[0].bogus".to_string()]);
        let err = field_validation(svc, &obj, FieldValidation::Strict).unwrap_err();
        assert!(err.to_string().contains("strict decoding error: unknown field \"spec.portz\""), "{err}");
        let bad = json!({"metadata": {"name": "x"}, "spec": {"ports": "eighty"}});
        assert!(matches!(decode_typed(svc, &bad), Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn deep_yaml_flow_nesting_is_found_outside_quotes_and_comments() {
        let deep = |n: usize| format!("a: {}", "[".repeat(n));
        assert!(!yaml_flow_too_deep(deep(128).as_bytes(), 128));
        assert!(yaml_flow_too_deep(deep(129).as_bytes(), 128));
        assert!(!yaml_flow_too_deep(b"a: [[1], [2], {b: [3]}]\n", 3));
        assert!(yaml_flow_too_deep(b"a: [[[1]]]\n", 2));
        // Quoted scalars and comments do not count, with their escapes.
        let quiet = b"a: \"[[[\\\"[[[\"\nb: '[[[''[[['\nc: x # [[[[\nd: [\"]]]\", 1]\n";
        assert!(!yaml_flow_too_deep(quiet, 1));
        // An apostrophe inside a plain scalar opens no quote, so it cannot hide brackets.
        assert!(yaml_flow_too_deep(b"a: [b', [[[", 2));
        assert!(!yaml_flow_too_deep(b"msg: don't [stop]\n", 1));
    }

    #[test]
    fn type_meta() {
        let svc = resources::find("", "v1", "services").unwrap();
        let mut o = json!({"metadata": {"name": "x"}});
        check_type_meta(svc, &mut o).unwrap();
        assert_eq!(o["kind"], "Service");
        let mut o = json!({"apiVersion": "apps/v1", "kind": "Service"});
        assert!(check_type_meta(svc, &mut o).is_err());
    }
}
