//! Protobuf request bodies (`Content-Type: application/vnd.kubernetes.protobuf`), as client-go's typed
//! clientsets send them (`kubectl create deployment|namespace|configmap|…`), decoded into the JSON the rest
//! of the server handles. Responses stay JSON.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` message: `typeMeta` (1: apiVersion, kind),
//! `raw` (2: the object's own encoding), `contentEncoding` (3) and `contentType` (4). The object is decoded
//! with [`schema`], a table generated from Kubernetes' `generated.proto` files, by [`decode`].

pub mod decode;
pub mod schema;
pub mod wire;

use serde_json::{Map, Value};

use crate::error::ApiError;
use wire::{Reader, LEN};

/// The media type of Kubernetes' protobuf encoding.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every protobuf-encoded Kubernetes object.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("decoding protobuf: the body does not start with the Kubernetes protobuf prefix \"k8s\\x00\"")]
    Magic,
    #[error("decoding protobuf {message}: data ends inside a {what}")]
    Truncated { message: String, what: String },
    #[error("decoding protobuf {message}: {what}")]
    Malformed { message: String, what: String },
    #[error("decoding protobuf {message}: field {field} has wire type {found}, expected {expected}")]
    WireType { message: String, field: u32, found: u8, expected: u8 },
    #[error("decoding protobuf {message}: unknown field number {field}")]
    UnknownField { message: String, field: u32 },
    #[error("decoding protobuf {message}: field {field} is not valid UTF-8")]
    Utf8 { message: String, field: u32 },
    #[error("decoding protobuf {message}: messages nested too deeply")]
    TooDeep { message: String },
    #[error("decoding protobuf: knet has no protobuf schema for {message}")]
    NoSchema { message: String },
    #[error("decoding protobuf: no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("decoding protobuf: unsupported content encoding {0:?} of the embedded object")]
    ContentEncoding(String),
}

impl From<ProtobufError> for ApiError {
    fn from(e: ProtobufError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

/// The `runtime.Unknown` envelope.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unknown<'a> {
    pub api_version: String,
    pub kind: String,
    pub raw: &'a [u8],
    pub content_encoding: String,
    pub content_type: String,
}

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

fn string(r: &mut Reader<'_>, message: &str, field: u32, wire: u8) -> Result<String, ProtobufError> {
    if wire != LEN {
        return Err(ProtobufError::WireType { message: message.into(), field, found: wire, expected: LEN });
    }
    String::from_utf8(r.len_delimited()?.to_vec()).map_err(|_| ProtobufError::Utf8 { message: message.into(), field })
}

/// Splits a body into its envelope (after the magic prefix).
pub fn envelope(body: &[u8]) -> Result<Unknown<'_>, ProtobufError> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or(ProtobufError::Magic)?;
    let mut u = Unknown::default();
    let mut r = Reader::new(rest, UNKNOWN);
    while !r.is_empty() {
        match r.key()? {
            (1, LEN) => {
                let mut t = Reader::new(r.len_delimited()?, TYPE_META);
                while !t.is_empty() {
                    match t.key()? {
                        (1, w) => u.api_version = string(&mut t, TYPE_META, 1, w)?,
                        (2, w) => u.kind = string(&mut t, TYPE_META, 2, w)?,
                        (n, _) => return Err(ProtobufError::UnknownField { message: TYPE_META.into(), field: n }),
                    }
                }
            }
            (2, LEN) => u.raw = r.len_delimited()?,
            (3, w) => u.content_encoding = string(&mut r, UNKNOWN, 3, w)?,
            (4, w) => u.content_type = string(&mut r, UNKNOWN, 4, w)?,
            (n @ (1 | 2), w) => {
                return Err(ProtobufError::WireType { message: UNKNOWN.into(), field: n, found: w, expected: LEN })
            }
            (n, _) => return Err(ProtobufError::UnknownField { message: UNKNOWN.into(), field: n }),
        }
    }
    Ok(u)
}

/// The protobuf message name of an `apiVersion` + `kind`, e.g. `apps/v1` `Deployment` →
/// `k8s.io.api.apps.v1.Deployment`. Options kinds (DeleteOptions) live in meta/v1 in every group.
pub fn message_name(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if group == "meta.k8s.io" || kind == "DeleteOptions" {
        return format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}");
    }
    let package = match group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    format!("k8s.io.api.{package}.{version}.{kind}")
}

/// Decodes a protobuf request body into the object's JSON (with `apiVersion` and `kind` first).
pub fn decode_request_body(body: &[u8]) -> Result<Value, ProtobufError> {
    let u = envelope(body)?;
    if !u.content_encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(u.content_encoding));
    }
    let name = message_name(&u.api_version, &u.kind);
    let msg = decode::find(&name)
        .ok_or_else(|| ProtobufError::UnknownKind { api_version: u.api_version.clone(), kind: u.kind.clone() })?;
    let fields = decode::message(msg, u.raw, 0)?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(u.api_version));
    out.insert("kind".into(), Value::String(u.kind));
    out.extend(fields);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests;
