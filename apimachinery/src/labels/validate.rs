//! Validation of label selector requirements, with Kubernetes' messages.
//!
//! These are the checks of `labels.NewRequirement`, built on `validation.IsQualifiedName`
//! and `validation.IsValidLabelValue` from [`crate::validation`].

use super::Operator;

/// `validation.IsQualifiedName`: a label key, `[prefix/]name`.
pub(crate) fn qualified_name_errors(value: &str) -> Vec<String> {
    crate::validation::is_qualified_name(value)
}

/// `validation.IsValidLabelValue`.
pub(crate) fn label_value_errors(value: &str) -> Vec<String> {
    crate::validation::is_valid_label_value(value)
}

/// `field.Invalid(path, value, detail).Error()` for a string value.
pub(crate) fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", go_quote(value))
}

/// The error for an invalid label key found while parsing (Kubernetes passes a nil path,
/// which prints as `<nil>`), or `None` when the key is valid.
pub(crate) fn key_error(path: &str, key: &str) -> Option<String> {
    let errs = qualified_name_errors(key);
    (!errs.is_empty()).then(|| invalid(path, key, &errs.join("; ")))
}

/// The checks of `labels.NewRequirement`, each error formatted as a field error.
pub(crate) fn requirement_errors(key: &str, op: Operator, values: &[String]) -> Vec<String> {
    let mut errs: Vec<String> = key_error("key", key).into_iter().collect();
    // Go marshals the values to JSON; values built from a LabelSelector are nil when empty.
    let values_json =
        if values.is_empty() { "null".to_string() } else { serde_json::to_string(values).unwrap_or_default() };
    let invalid_values = |detail: &str| format!("values: Invalid value: {values_json}: {detail}");
    match op {
        Operator::In | Operator::NotIn if values.is_empty() => {
            errs.push(invalid_values("for 'in', 'notin' operators, values set can't be empty"))
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            errs.push(invalid_values("exact-match compatibility requires one single value"))
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            errs.push(invalid_values("values set must be empty for exists and does not exist"))
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(invalid_values("for 'Gt', 'Lt' operators, exactly one value is required"));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(invalid(
                        &format!("values[{i}]"),
                        v,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = label_value_errors(v);
        if !msgs.is_empty() {
            errs.push(invalid(&format!("values[{i}][{key}]"), v, &msgs.join("; ")));
        }
    }
    errs
}

/// `errors.NewAggregate(...).Error()`: one message as is, several as `[a, b]`, duplicates
/// dropped.
pub(crate) fn aggregate(errs: Vec<String>) -> String {
    let mut unique: Vec<String> = Vec::new();
    for e in errs {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    match unique.as_slice() {
        [one] => one.clone(),
        _ => format!("[{}]", unique.join(", ")),
    }
}

/// Go's `%q`: a double-quoted string with Go escapes (printable Unicode kept as is).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
