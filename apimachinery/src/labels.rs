//! Label selectors, as `k8s.io/apimachinery/pkg/labels`.
//!
//! A [`Selector`] is a list of [`Requirement`]s that must all hold. It comes from the string
//! form clients send in `?labelSelector=` ([`parse`]: `app=nginx,tier in (web, api),!canary`),
//! from a `metav1.LabelSelector` ([`from_label_selector`]: Deployments, NetworkPolicies,
//! EndpointSlices …) or from a plain map ([`Selector::from_set`]: a Service's `spec.selector`).
//!
//! Parsing follows Kubernetes' lexer and parser token for token, so the accepted syntax, the
//! canonical string form ([`Selector`]'s `Display`) and the error texts are the ones
//! kube-apiserver gives (it answers 400 Bad Request with the error's text).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

mod parser;
mod validate;

pub use parser::parse;

/// Why a label selector could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LabelSelectorError {
    /// The string form has a syntax error or an invalid key or value, e.g.
    /// `unable to parse requirement: found '', expected: identifier`.
    #[error("{0}")]
    Parse(String),
    /// A requirement's key, operator or values are invalid, e.g.
    /// `values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty`.
    #[error("{0}")]
    InvalidRequirement(String),
    /// A `matchExpressions` operator other than In, NotIn, Exists and DoesNotExist.
    #[error("{} is not a valid label selector operator", validate::go_quote(.0))]
    InvalidOperator(String),
}

/// The operator of a [`Requirement`] (`selection.Operator`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`: true when the label is missing or has another value.
    NotEquals,
    /// `key in (a,b)`
    In,
    /// `key notin (a,b)`: true when the label is missing or has none of the values.
    NotIn,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>3`: the label's value parses as an integer greater than the value.
    GreaterThan,
    /// `key<3`
    LessThan,
}

impl Operator {
    /// Kubernetes' name of the operator (`selection.Operator`'s string value).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One condition on one label: `key operator values`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// A validated requirement, as `labels.NewRequirement`: the key must be a qualified name,
    /// the values valid label values, and their number must fit the operator (one for the
    /// equality and comparison operators, at least one for `in`/`notin`, none for the
    /// existence operators; integers for `>` and `<`).
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement, LabelSelectorError> {
        let errs = validate::requirement_errors(key, operator, &values);
        if errs.is_empty() {
            Ok(Requirement { key: key.to_string(), operator, values })
        } else {
            Err(LabelSelectorError::InvalidRequirement(validate::aggregate(errs)))
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a set of labels satisfies this requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|v| self.values.iter().any(|w| w == v))
            }
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.iter().any(|w| w == v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(actual), [wanted]) = (value, self.values.as_slice()) else {
                    return false;
                };
                match (actual.parse::<i64>(), wanted.parse::<i64>()) {
                    (Ok(a), Ok(w)) if self.operator == Operator::GreaterThan => a > w,
                    (Ok(a), Ok(w)) => a < w,
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// The canonical form: `!key`, `key`, `key=v`, `key in (a,b)` (values sorted), `key>3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Exists => return f.write_str(&self.key),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        let values = values.join(",");
        match self.operator {
            Operator::In | Operator::NotIn => write!(f, "{}{op}({values})", self.key),
            _ => write!(f, "{}{op}{values}", self.key),
        }
    }
}

/// A conjunction of label requirements. The empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    /// `labels.Nothing()`: matches no object at all.
    nothing: bool,
}

impl Selector {
    /// The selector that matches every object (`labels.Everything()`; also the empty string).
    pub fn everything() -> Self {
        Selector::default()
    }

    /// The selector that matches no object (`labels.Nothing()`), what Kubernetes makes of a
    /// *missing* `LabelSelector` (see [`from_optional_label_selector`]).
    pub fn nothing() -> Self {
        Selector { requirements: Vec::new(), nothing: true }
    }

    /// Whether this selector matches everything (no requirements).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is [`Selector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// `key=value` for every entry of the map (`labels.SelectorFromSet`), e.g. a Service's
    /// `spec.selector`. The entries are not validated. An empty map gives a selector that
    /// matches everything; callers for which an empty or missing selector means "select
    /// nothing" (a Service without selector gets no managed Endpoints) check that first.
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        let requirements = set
            .iter()
            .map(|(k, v)| Requirement { key: k.clone(), operator: Operator::Equals, values: vec![v.clone()] })
            .collect();
        Selector { requirements, nothing: false }
    }

    /// A selector from requirements, sorted by key as Kubernetes keeps them.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector { requirements, nothing: false }
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The value `key` must have when the selector requires exactly one (`key=v`, `key==v`,
    /// `key in (v)`), as `Selector.RequiresExactMatch`; useful to narrow a list by index.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) if r.key == key => Some(v.as_str()),
            _ => None,
        })
    }
}

impl fmt::Display for Selector {
    /// The canonical string form: requirements joined by `,`; empty for everything (and, as
    /// in Kubernetes, for nothing).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// The selector a `metav1.LabelSelector` stands for (`metav1.LabelSelectorAsSelector`):
/// `matchLabels` as `key=value` and `matchExpressions` with the operators In, NotIn, Exists
/// and DoesNotExist, validated as Kubernetes does (In/NotIn need values, Exists/DoesNotExist
/// forbid them, keys and values must be valid). An empty selector matches everything.
///
/// A *missing* selector is not an empty one, and what it means depends on the field, so
/// the caller decides: a Service without `spec.selector` gets no managed Endpoints; in a
/// NetworkPolicy peer a missing `podSelector` next to a `namespaceSelector` means every pod
/// of those namespaces, while an empty one (`{}`) on its own means every pod of the
/// policy's namespace.
/// [`from_optional_label_selector`] gives Kubernetes' generic reading (nothing).
pub fn from_label_selector(ls: &LabelSelector) -> Result<Selector, LabelSelectorError> {
    let match_labels = ls.match_labels.as_ref();
    let match_expressions = ls.match_expressions.as_deref().unwrap_or_default();
    if match_labels.is_none_or(BTreeMap::is_empty) && match_expressions.is_empty() {
        return Ok(Selector::everything());
    }
    let mut requirements = Vec::new();
    for (k, v) in match_labels.into_iter().flatten() {
        requirements.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
    }
    for expr in match_expressions {
        let operator = match expr.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => return Err(LabelSelectorError::InvalidOperator(other.to_string())),
        };
        requirements.push(Requirement::new(&expr.key, operator, expr.values.clone().unwrap_or_default())?);
    }
    Ok(Selector::from_requirements(requirements))
}

/// [`from_label_selector`] for an optional selector: `None` gives [`Selector::nothing`], as
/// `metav1.LabelSelectorAsSelector(nil)` does.
pub fn from_optional_label_selector(ls: Option<&LabelSelector>) -> Result<Selector, LabelSelectorError> {
    ls.map_or_else(|| Ok(Selector::nothing()), from_label_selector)
}

#[cfg(test)]
mod tests;
