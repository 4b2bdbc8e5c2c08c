//! API errors and their `metav1.Status` form, with kube-apiserver's codes, reasons and messages.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use knet_apimachinery::field::{invalid_message, FieldError};
use serde_json::{json, Value};

use crate::resources::ResourceInfo;
use crate::storage::StorageError;

/// An error answered to an API client as a `Status` object.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{qualified} {name:?} not found")]
    NotFound { group: String, qualified: String, plural: String, name: String },
    #[error("{qualified} {name:?} already exists")]
    AlreadyExists { group: String, qualified: String, plural: String, name: String },
    /// Every name generated from `generateName` was taken (`NewGenerateNameConflict`); `name` is the last one tried.
    #[error("{qualified} {name:?} already exists, the server was not able to generate a unique name for the object")]
    GenerateNameConflict { group: String, qualified: String, plural: String, name: String },
    #[error("Operation cannot be fulfilled on {qualified} {name:?}: {detail}")]
    Conflict { group: String, qualified: String, plural: String, name: String, detail: String },
    #[error("{}", invalid_message(.kind, .name, .errors))]
    Invalid { group: String, kind: String, name: String, errors: Vec<FieldError> },
    #[error("{0}")]
    BadRequest(String),
    /// A well-formed request that cannot be applied (e.g. a patch of a missing path).
    #[error("{0}")]
    Unprocessable(String),
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("the server could not find the requested resource")]
    NoSuchPath,
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("{0}")]
    Gone(String),
    #[error("the body of the request was in an unknown format - accepted media types include: {0}")]
    UnsupportedMediaType(String),
    #[error("only the following media types are accepted: {0}")]
    NotAcceptable(String),
    #[error("the request is too large")]
    TooLarge,
    #[error("the server is currently unable to handle the request: {0}")]
    Unavailable(String),
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn not_found(res: &ResourceInfo, name: &str) -> Self {
        ApiError::NotFound {
            group: res.group.into(),
            qualified: res.qualified_plural(),
            plural: res.plural.into(),
            name: name.into(),
        }
    }

    pub fn already_exists(res: &ResourceInfo, name: &str) -> Self {
        ApiError::AlreadyExists {
            group: res.group.into(),
            qualified: res.qualified_plural(),
            plural: res.plural.into(),
            name: name.into(),
        }
    }

    pub fn generate_name_conflict(res: &ResourceInfo, name: &str) -> Self {
        ApiError::GenerateNameConflict {
            group: res.group.into(),
            qualified: res.qualified_plural(),
            plural: res.plural.into(),
            name: name.into(),
        }
    }

    /// The optimistic-concurrency conflict kubectl users know.
    pub fn conflict(res: &ResourceInfo, name: &str) -> Self {
        Self::conflict_with(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn conflict_with(res: &ResourceInfo, name: &str, detail: &str) -> Self {
        ApiError::Conflict {
            group: res.group.into(),
            qualified: res.qualified_plural(),
            plural: res.plural.into(),
            name: name.into(),
            detail: detail.into(),
        }
    }

    pub fn invalid(res: &ResourceInfo, name: &str, errors: Vec<FieldError>) -> Self {
        ApiError::Invalid { group: res.group.into(), kind: res.kind.into(), name: name.into(), errors }
    }

    /// `410 Gone` for a watch or list from a compacted resourceVersion.
    pub fn too_old(requested: i64, oldest: i64) -> Self {
        ApiError::Gone(format!("too old resource version: {requested} ({oldest})"))
    }

    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchPath => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. } | ApiError::GenerateNameConflict { .. } | ApiError::Conflict { .. } => {
                StatusCode::CONFLICT
            }
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Gone(_) => StatusCode::GONE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `reason` field of the Status.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchPath => "NotFound",
            ApiError::AlreadyExists { .. } | ApiError::GenerateNameConflict { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unprocessable(_) => "Invalid",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::Gone(_) => "Expired",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::TooLarge => "RequestEntityTooLarge",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// The `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        let details = match self {
            ApiError::NotFound { group, plural, name, .. }
            | ApiError::AlreadyExists { group, plural, name, .. }
            | ApiError::Conflict { group, plural, name, .. } => {
                let mut d = json!({ "name": name, "kind": plural });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::GenerateNameConflict { group, plural, name, .. } => {
                let mut d = json!({ "name": name, "kind": plural, "retryAfterSeconds": 1 });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::Invalid { group, kind, name, errors } => {
                let causes: Vec<Value> = errors
                    .iter()
                    .map(|e| json!({ "reason": e.kind.cause_reason(), "message": e.body(), "field": e.field.as_str() }))
                    .collect();
                let mut d = json!({ "name": name, "kind": kind, "causes": causes });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        if code.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        Response::builder()
            .status(code)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))
            .unwrap_or_else(|_| code.into_response())
    }
}

impl From<knet_apimachinery::patch::PatchError> for ApiError {
    fn from(e: knet_apimachinery::patch::PatchError) -> Self {
        match e.status_code() {
            400 => ApiError::BadRequest(e.to_string()),
            413 => ApiError::TooLarge,
            _ => ApiError::Unprocessable(e.to_string()),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Compacted { requested, oldest } => ApiError::too_old(requested, oldest),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
