//! Field paths and field errors, as `k8s.io/apimachinery/pkg/util/validation/field`.
//!
//! A [`FieldError`] prints exactly like kube-apiserver's, so that kubectl shows users
//! the same text: `spec.ports[0].name: Invalid value: "123_abc": a DNS-1123 label …`.

use std::fmt;

use serde_json::Value;

/// A path to a field, built with [`Path::child`] and [`Path::index`]: `spec.ports[0].name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// The root path with one element, e.g. `Path::new("spec")`.
    pub fn new(name: &str) -> Self {
        Path(name.to_string())
    }

    /// `self.name`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// `self[i]`.
    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    /// `self[key]`, for map entries.
    pub fn key(&self, key: &str) -> Self {
        Path(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of field error, with the `reason` strings of `metav1.CauseType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl ErrorType {
    /// The `reason` of a `StatusCause`, e.g. `FieldValueInvalid`.
    pub fn cause_reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human text Go prints for the type, e.g. `Invalid value`.
    pub fn text(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
            ErrorType::TypeInvalid => "Invalid value",
        }
    }
}

/// One validation error on one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: ErrorType,
    pub field: Path,
    /// The offending value; `None` where Go omits it (Required, Forbidden, …).
    pub value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn invalid(field: &Path, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        FieldError { kind: ErrorType::Invalid, field: field.clone(), value: Some(value.into()), detail: detail.into() }
    }
    pub fn required(field: &Path, detail: impl Into<String>) -> Self {
        FieldError { kind: ErrorType::Required, field: field.clone(), value: None, detail: detail.into() }
    }
    pub fn duplicate(field: &Path, value: impl Into<Value>) -> Self {
        FieldError {
            kind: ErrorType::Duplicate,
            field: field.clone(),
            value: Some(value.into()),
            detail: String::new(),
        }
    }
    pub fn forbidden(field: &Path, detail: impl Into<String>) -> Self {
        FieldError { kind: ErrorType::Forbidden, field: field.clone(), value: None, detail: detail.into() }
    }
    pub fn not_found(field: &Path, value: impl Into<Value>) -> Self {
        FieldError { kind: ErrorType::NotFound, field: field.clone(), value: Some(value.into()), detail: String::new() }
    }
    pub fn too_many(field: &Path, actual: usize, max: usize) -> Self {
        FieldError {
            kind: ErrorType::TooMany,
            field: field.clone(),
            value: Some(Value::from(actual)),
            detail: format!("must have at most {max} items"),
        }
    }
    pub fn too_long(field: &Path, max: usize) -> Self {
        FieldError {
            kind: ErrorType::TooLong,
            field: field.clone(),
            value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }
    /// `Unsupported value: "X": supported values: "A", "B"`.
    pub fn not_supported(field: &Path, value: impl Into<Value>, valid: &[&str]) -> Self {
        let quoted: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
        FieldError {
            kind: ErrorType::NotSupported,
            field: field.clone(),
            value: Some(value.into()),
            detail: if quoted.is_empty() { String::new() } else { format!("supported values: {}", quoted.join(", ")) },
        }
    }

    /// The message without the field path, as `StatusCause.message`: `Invalid value: "x": detail`.
    pub fn body(&self) -> String {
        let mut s = self.kind.text().to_string();
        match self.kind {
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong | ErrorType::Internal => {
                if !self.detail.is_empty() {
                    s.push_str(": ");
                    s.push_str(&self.detail);
                }
                return s;
            }
            _ => {}
        }
        if let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(&go_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// How kube-apiserver (k8s.io/apimachinery 1.34) renders a bad value: strings quoted,
/// numbers and booleans bare, anything else as JSON (`["10.96.0.10"]`).
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// A list of field errors; empty means valid.
pub type FieldErrors = Vec<FieldError>;

/// The aggregate message kube-apiserver prints for an invalid object:
/// `Service "x" is invalid: spec.ports[0].name: …` (one error) or
/// `Service "x" is invalid: [a, b]` (several).
pub fn invalid_message(kind: &str, name: &str, errs: &[FieldError]) -> String {
    let parts: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let joined = if parts.len() == 1 { parts[0].clone() } else { format!("[{}]", parts.join(", ")) };
    format!("{kind} {name:?} is invalid: {joined}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kube_apiserver() {
        let p = Path::new("spec").child("ports").index(0).child("name");
        let e =
            FieldError::invalid(&p, "123_abc", "a DNS-1123 label must consist of lower case alphanumeric characters");
        assert_eq!(
            e.to_string(),
            "spec.ports[0].name: Invalid value: \"123_abc\": a DNS-1123 label must consist of lower case alphanumeric characters"
        );
        let r = FieldError::required(&Path::new("spec").child("ports"), "");
        assert_eq!(r.to_string(), "spec.ports: Required value");
        assert_eq!(
            invalid_message("Service", "x", &[e.clone(), r.clone()]),
            format!("Service \"x\" is invalid: [{e}, {r}]")
        );
        let ns = FieldError::not_supported(&Path::new("spec").child("type"), "Foo", &["ClusterIP", "NodePort"]);
        assert_eq!(
            ns.to_string(),
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"NodePort\""
        );
    }
}
