//! How Go prints decoded JSON values, so that patch errors read as kube-apiserver's.
//!
//! kube-apiserver decodes JSON into `map[string]interface{}` (integers kept as `int64`) and
//! its strategic merge patch errors print those values with `%v` and their types with
//! `reflect.TypeOf`.

use serde_json::{Number, Value};

/// Go's `%v` of a decoded JSON value: `map[a:1 b:[x y]]`, `<nil>`, strings bare.
pub(crate) fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => go_map(m),
    }
}

/// `%v` of a map: keys sorted, as Go's fmt prints maps.
pub(crate) fn go_map(m: &serde_json::Map<String, Value>) -> String {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{}", go_v(v))).collect();
    format!("map[{}]", parts.join(" "))
}

/// `%v` of a list of values: `[a b]`.
pub(crate) fn go_list(items: &[Value]) -> String {
    go_v(&Value::Array(items.to_vec()))
}

/// Integers print in full; other numbers like Go's `%v` of a `float64` (`%g`, shortest).
fn go_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    if f == 0.0 || f.is_nan() || f.is_infinite() {
        return format!("{f}");
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..21).contains(&exp) {
        format!("{f}")
    } else {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, e)) => {
                let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
                format!("{mantissa}e{sign}{digits:0>2}")
            }
            None => s,
        }
    }
}

/// `reflect.TypeOf` of a decoded JSON value, as `%s` prints it.
pub(crate) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The JSON type name `encoding/json` uses in "cannot unmarshal X into …".
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn prints_like_go() {
        assert_eq!(
            go_v(&json!({"name": "a", "port": 80, "x": [1, "b"], "n": null})),
            "map[n:<nil> name:a port:80 x:[1 b]]"
        );
        assert_eq!(go_v(&json!(1.5)), "1.5");
        assert_eq!(go_v(&json!(1e30)), "1e+30");
        assert_eq!(go_type(&json!([])), "[]interface {}");
        assert_eq!(go_type(&json!(2)), "int64");
        assert_eq!(go_type(&json!(2.5)), "float64");
    }
}
