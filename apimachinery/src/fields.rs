//! Field selectors, as `k8s.io/apimachinery/pkg/fields`.
//!
//! A [`FieldSelector`] is what clients send in `?fieldSelector=`: comma-separated terms
//! `field=value`, `field==value` or `field!=value` that must all hold, e.g.
//! `metadata.name=web,spec.nodeName!=`. In values, `\,`, `\=` and `\\` stand for `,`, `=`
//! and `\`. Which fields a resource supports is up to the API server; this module only
//! parses, prints and evaluates.

use std::fmt;

/// Why a field selector could not be parsed; the texts are kube-apiserver's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldSelectorError {
    /// A term without an operator.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    InvalidTerm { selector: String, term: String },
    /// A backslash not followed by `\`, `,` or `=`.
    #[error("invalid field selector: invalid escape sequence: {0}")]
    InvalidEscapeSequence(String),
    /// A `,` or `=` in a value that is not escaped (Go prints the code point as a number).
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*.0))]
    UnescapedCharacter(char),
}

/// The operator of a field requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOp {
    /// `=` or `==`
    Equals,
    /// `!=`
    NotEquals,
}

impl FieldOp {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldOp::Equals => "=",
            FieldOp::NotEquals => "!=",
        }
    }
}

/// One term: `field op value`, the value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub op: FieldOp,
    pub value: String,
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.field, self.op.as_str(), escape_value(&self.value))
    }
}

/// A conjunction of field requirements. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    reqs: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses the string form (`fields.ParseSelector`). Terms come out in the order of their
    /// text, as Kubernetes sorts them; empty terms, and terms with neither field nor value,
    /// are skipped.
    pub fn parse(s: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut reqs = Vec::new();
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, op, raw)) = split_term(term) else {
                return Err(FieldSelectorError::InvalidTerm { selector: s.to_string(), term: term.to_string() });
            };
            let value = unescape_value(raw)?;
            // A term with neither field nor value (`=`) selects everything, as in Kubernetes.
            if !(field.is_empty() && value.is_empty()) {
                reqs.push(FieldRequirement { field: field.to_string(), op, value });
            }
        }
        Ok(FieldSelector { reqs })
    }

    /// The selector that matches everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Whether this selector has no requirement.
    pub fn is_everything(&self) -> bool {
        self.reqs.is_empty()
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.reqs
    }

    /// The value `field` must equal, if a `field=value` term requires one (the API server
    /// uses it to turn `metadata.name=x` into a get).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.reqs.iter().find(|r| r.op == FieldOp::Equals && r.field == field).map(|r| r.value.as_str())
    }

    /// Whether an object matches; `get` returns a field's value, and a field it does not
    /// know compares as the empty string, as in Kubernetes.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.reqs.iter().all(|r| {
            let v = get(&r.field).unwrap_or_default();
            (v == r.value) == (r.op == FieldOp::Equals)
        })
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical form: `field=value` terms with escaped values, joined by `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.reqs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Escapes `\`, `,` and `=` in a value (`fields.EscapeValue`).
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Undoes [`escape_value`], refusing unknown escapes and bare `,` and `=`
/// (`fields.UnescapeValue`).
pub fn unescape_value(s: &str) -> Result<String, FieldSelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(FieldSelectorError::InvalidEscapeSequence(format!("\\{c}")));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => return Err(FieldSelectorError::UnescapedCharacter(c)),
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(FieldSelectorError::InvalidEscapeSequence("\\".to_string()));
    }
    Ok(out)
}

/// Splits on the commas that are not escaped; escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at its first operator (`!=` before `==` before `=`); the field is not
/// unescaped.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (token, op) in [("!=", FieldOp::NotEquals), ("==", FieldOp::Equals), ("=", FieldOp::Equals)] {
            if let Some(value) = rest.strip_prefix(token) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn req(field: &str, op: FieldOp, value: &str) -> FieldRequirement {
        FieldRequirement { field: field.into(), op, value: value.into() }
    }

    #[test]
    fn parses_terms_sorted_by_text() {
        let s = FieldSelector::parse("status.phase!=Running,metadata.name==web,spec.nodeName=").unwrap();
        assert_eq!(
            s.requirements(),
            [
                req("metadata.name", FieldOp::Equals, "web"),
                req("spec.nodeName", FieldOp::Equals, ""),
                req("status.phase", FieldOp::NotEquals, "Running"),
            ]
        );
        assert_eq!(s.to_string(), "metadata.name=web,spec.nodeName=,status.phase!=Running");
        assert_eq!(s.requires_exact_match("metadata.name"), Some("web"));
        assert_eq!(s.requires_exact_match("status.phase"), None);
        assert!(FieldSelector::parse("").unwrap().is_everything());
        assert!(FieldSelector::parse(",,").unwrap().is_everything());
        assert!(FieldSelector::parse("=,!=").unwrap().is_everything());
        assert_eq!(FieldSelector::parse("=x").unwrap().requirements(), [req("", FieldOp::Equals, "x")]);
        // No trimming: spaces belong to the field and the value.
        assert_eq!(FieldSelector::parse("a = b").unwrap().requirements(), [req("a ", FieldOp::Equals, " b")]);
    }

    #[test]
    fn escapes() {
        let s = FieldSelector::parse(r"a=x\,y\=z\\,b!=\\").unwrap();
        assert_eq!(s.requirements(), [req("a", FieldOp::Equals, r"x,y=z\"), req("b", FieldOp::NotEquals, r"\")]);
        assert_eq!(s.to_string(), r"a=x\,y\=z\\,b!=\\");
        // The first operator splits: `a==b` is `a == "b"`, `a=!=b` is `a = "!=b"`… which has an unescaped `=`.
        assert_eq!(FieldSelector::parse("a==b").unwrap().requirements(), [req("a", FieldOp::Equals, "b")]);
        assert_eq!(
            FieldSelector::parse("a!==b").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn errors_read_like_kubernetes() {
        let e = |s: &str| FieldSelector::parse(s).unwrap_err().to_string();
        assert_eq!(e("metadata.name"), "invalid selector: 'metadata.name'; can't understand 'metadata.name'");
        assert_eq!(e("b=1,a"), "invalid selector: 'b=1,a'; can't understand 'a'");
        assert_eq!(e(r"a=\x"), r"invalid field selector: invalid escape sequence: \x");
        assert_eq!(e(r"a=x\"), r"invalid field selector: invalid escape sequence: \");
        assert_eq!(e("a=b=c"), "invalid field selector: unescaped character in value: 61");
    }

    #[test]
    fn missing_fields_compare_as_empty() {
        let obj: BTreeMap<&str, &str> = [("metadata.name", "web"), ("status.phase", "Running")].into();
        let get = |f: &str| obj.get(f).map(|v| v.to_string());
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(get);
        assert!(m("metadata.name=web") && m("status.phase!=Pending") && m("spec.nodeName="));
        assert!(!m("metadata.name!=web") && !m("spec.nodeName=n1") && m("spec.nodeName!=n1"));
        assert!(m("") && !m("metadata.name=web,status.phase=Pending"));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(
            reqs in proptest::collection::vec(
                ("[a-zA-Z][a-zA-Z.]{0,12}", prop_oneof![Just(FieldOp::Equals), Just(FieldOp::NotEquals)], ".{0,8}"),
                0..5,
            )
        ) {
            let sel = FieldSelector {
                reqs: reqs.into_iter().map(|(field, op, value)| FieldRequirement { field, op, value }).collect(),
            };
            let reparsed = FieldSelector::parse(&sel.to_string())
                .map_err(|e| TestCaseError::fail(format!("{sel}: {e}")))?;
            let sorted = |s: &FieldSelector| {
                let mut v: Vec<String> = s.requirements().iter().map(|r| format!("{:?}", r)).collect();
                v.sort();
                v
            };
            prop_assert_eq!(sorted(&reparsed), sorted(&sel));
        }

        #[test]
        fn escaping_round_trips(v in any::<String>()) {
            prop_assert_eq!(unescape_value(&escape_value(&v)), Ok(v));
        }

        #[test]
        fn parse_never_panics(s in r"[a-z=!,\\é ]{0,20}") {
            let _ = FieldSelector::parse(&s);
        }
    }
}
