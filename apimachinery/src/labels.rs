//! Label selectors. (Interface stub: being implemented.)

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LabelSelectorError(pub String);

#[derive(Clone, Debug, Default)]
pub struct Selector;

pub fn parse(_s: &str) -> Result<Selector, LabelSelectorError> {
    Err(LabelSelectorError("label selectors are not implemented yet".into()))
}

pub fn from_label_selector(
    _ls: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Result<Selector, LabelSelectorError> {
    Err(LabelSelectorError("label selectors are not implemented yet".into()))
}

impl Selector {
    pub fn everything() -> Self {
        Selector
    }
    pub fn is_everything(&self) -> bool {
        true
    }
    pub fn from_set(_set: &BTreeMap<String, String>) -> Self {
        Selector
    }
    pub fn matches(&self, _labels: &BTreeMap<String, String>) -> bool {
        true
    }
}
