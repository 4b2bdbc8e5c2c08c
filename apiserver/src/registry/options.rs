//! Request options from query parameters and bodies: `ListOptions`, `DeleteOptions`,
//! create/update options and patch types, with kube-apiserver's parsing rules.

use serde_json::Value;

use crate::error::ApiError;

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "True" | "TRUE" => Ok(true),
        "false" | "0" | "False" | "FALSE" | "" => Ok(false),
        _ => Err(ApiError::BadRequest(format!("invalid value for {name}: {v:?}: must be a boolean"))),
    }
}

fn parse_int(name: &str, v: &str) -> Result<i64, ApiError> {
    v.parse().map_err(|_| ApiError::BadRequest(format!("invalid value for {name}: {v:?}: must be an integer")))
}

/// `metav1.ListOptions`.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub timeout_seconds: Option<i64>,
    pub limit: Option<i64>,
    pub continue_token: Option<String>,
    pub send_initial_events: Option<bool>,
}

impl ListOptions {
    pub fn from_query(q: &[(String, String)]) -> Result<Self, ApiError> {
        let mut o = ListOptions::default();
        for (k, v) in q {
            match k.as_str() {
                "labelSelector" => o.label_selector = Some(v.clone()).filter(|s| !s.is_empty()),
                "fieldSelector" => o.field_selector = Some(v.clone()).filter(|s| !s.is_empty()),
                "watch" => o.watch = parse_bool(k, v)?,
                "allowWatchBookmarks" => o.allow_watch_bookmarks = parse_bool(k, v)?,
                "resourceVersion" => o.resource_version = Some(v.clone()).filter(|s| !s.is_empty()),
                "resourceVersionMatch" => o.resource_version_match = Some(v.clone()).filter(|s| !s.is_empty()),
                "timeoutSeconds" => o.timeout_seconds = Some(parse_int(k, v)?),
                "limit" => o.limit = Some(parse_int(k, v)?).filter(|n| *n > 0),
                "continue" => o.continue_token = Some(v.clone()).filter(|s| !s.is_empty()),
                "sendInitialEvents" => o.send_initial_events = Some(parse_bool(k, v)?),
                _ => {}
            }
        }
        if let Some(m) = &o.resource_version_match {
            if !matches!(m.as_str(), "NotOlderThan" | "Exact") {
                return Err(ApiError::BadRequest(format!(
                    "resourceVersionMatch: Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""
                )));
            }
            if o.resource_version.is_none() {
                return Err(ApiError::BadRequest(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
                        .into(),
                ));
            }
        }
        if o.continue_token.is_some() && o.resource_version.as_deref().is_some_and(|rv| rv != "0") {
            return Err(ApiError::BadRequest("specifying resource version is not allowed when using continue".into()));
        }
        Ok(o)
    }
}

/// How unknown or duplicate fields in a body are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options of create, update and patch.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
    pub force: bool,
}

impl WriteOptions {
    pub fn from_query(q: &[(String, String)]) -> Result<Self, ApiError> {
        let mut o = WriteOptions::default();
        for (k, v) in q {
            match k.as_str() {
                "dryRun" => match v.as_str() {
                    "All" => o.dry_run = true,
                    "" => {}
                    other => {
                        return Err(ApiError::BadRequest(format!(
                            "dryRun: Unsupported value: {other:?}: supported values: \"All\""
                        )))
                    }
                },
                "fieldValidation" => {
                    o.field_validation = match v.as_str() {
                        "Ignore" => FieldValidation::Ignore,
                        "Warn" | "" => FieldValidation::Warn,
                        "Strict" => FieldValidation::Strict,
                        other => {
                            return Err(ApiError::BadRequest(format!(
                                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                            )))
                        }
                    }
                }
                "fieldManager" => o.field_manager = Some(v.clone()),
                "force" => o.force = parse_bool(k, v)?,
                _ => {}
            }
        }
        Ok(o)
    }
}

/// `metav1.DeleteOptions`, from the query and/or the request body.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    pub fn from_query_and_body(q: &[(String, String)], body: Option<&Value>) -> Result<Self, ApiError> {
        let mut o = DeleteOptions::default();
        if let Some(b) = body {
            if let Some(k) = b.get("kind").and_then(Value::as_str) {
                if k != "DeleteOptions" {
                    return Err(ApiError::BadRequest(format!("the body of a delete must be DeleteOptions, not {k}")));
                }
            }
            o.grace_period_seconds = b.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.propagation_policy = b.get("propagationPolicy").and_then(Value::as_str).map(String::from);
            o.orphan_dependents = b.get("orphanDependents").and_then(Value::as_bool);
            o.precondition_uid = b.pointer("/preconditions/uid").and_then(Value::as_str).map(String::from);
            o.precondition_resource_version =
                b.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(String::from);
            if let Some(d) = b.get("dryRun").and_then(Value::as_array) {
                o.dry_run = d.iter().any(|x| x == "All");
            }
        }
        for (k, v) in q {
            match k.as_str() {
                "gracePeriodSeconds" => o.grace_period_seconds = Some(parse_int(k, v)?),
                "propagationPolicy" => o.propagation_policy = Some(v.clone()),
                "orphanDependents" => o.orphan_dependents = Some(parse_bool(k, v)?),
                "dryRun" => o.dry_run = v == "All",
                _ => {}
            }
        }
        if let Some(p) = &o.propagation_policy {
            if !matches!(p.as_str(), "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::BadRequest(format!(
                    "propagationPolicy: Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
            if o.orphan_dependents.is_some() {
                return Err(ApiError::BadRequest(
                    "propagationPolicy: Invalid value: orphanDependents and propagationPolicy cannot both be set"
                        .into(),
                ));
            }
        }
        if let Some(g) = o.grace_period_seconds {
            if g < 0 {
                o.grace_period_seconds = Some(1);
            }
        }
        Ok(o)
    }

    /// The effective propagation policy.
    pub fn policy(&self) -> &str {
        match (&self.propagation_policy, self.orphan_dependents) {
            (Some(p), _) => p,
            (None, Some(true)) => "Orphan",
            _ => "Background",
        }
    }
}

/// The patch formats kube-apiserver accepts, by Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(PatchType::Apply),
            _ => None,
        }
    }

    pub const ACCEPTED: &'static str =
        "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json";
}
