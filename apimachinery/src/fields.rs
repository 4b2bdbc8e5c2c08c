//! Field selectors. (Interface stub: being implemented.)

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FieldSelectorError(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldOp {
    Equals,
    NotEquals,
}

#[derive(Clone, Debug)]
pub struct FieldRequirement {
    pub field: String,
    pub op: FieldOp,
    pub value: String,
}

#[derive(Clone, Debug, Default)]
pub struct FieldSelector {
    reqs: Vec<FieldRequirement>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<FieldSelector, FieldSelectorError> {
        let mut reqs = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (field, op, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, FieldOp::NotEquals, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, FieldOp::Equals, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, FieldOp::Equals, v)
            } else {
                return Err(FieldSelectorError(format!("invalid selector: '{s}'; can't understand '{part}'")));
            };
            reqs.push(FieldRequirement { field: field.trim().into(), op, value: value.trim().into() });
        }
        Ok(FieldSelector { reqs })
    }
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.reqs
    }
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.reqs.iter().all(|r| {
            let v = get(&r.field).unwrap_or_default();
            (v == r.value) == (r.op == FieldOp::Equals)
        })
    }
}
