//! Defaulting and validation per kind. (Interface stub: being implemented.)

use knet_apimachinery::field::FieldError;
use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceInfo;

pub fn default(_res: &ResourceInfo, _obj: &mut Value) -> Result<(), ApiError> {
    Ok(())
}

pub fn validate(_res: &ResourceInfo, _obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}

pub fn validate_status(_res: &ResourceInfo, _obj: &Value, _old: &Value) -> Vec<FieldError> {
    Vec::new()
}
