//! The OpenAPI documents kubectl reads to know the served types: `GET /openapi/v3` (the
//! index), `GET /openapi/v3/{api/v1|apis/{group}/{version}}` (one document per
//! group-version) and `GET /openapi/v2` (Swagger 2.0, JSON).
//!
//! Each v3 document has `components.schemas` from k8s-openapi's types ([`schemas`]) and
//! `paths` for every operation ([`paths`]); kubectl uses them for `kubectl explain`,
//! to detect server-side field validation (`--validate=strict`) and to compute the
//! strategic merge patch of `kubectl apply`. Documents are built once, on first use, and
//! served from memory; the index gives each one a content hash so clients can cache them
//! (kube-apiserver answers hashed URLs with `Cache-Control: public, immutable`).
//!
//! client-go fetches `/openapi/v2` only as protobuf and only when v3 fails; the JSON v2
//! document here is for other clients.

mod patch_meta;
mod paths;
mod schemas;

pub(crate) use schemas::field_description;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::discovery::GIT_VERSION;
use crate::resources::{ResourceInfo, RESOURCES};

/// Every document, built once.
struct Docs {
    /// The `/openapi/v3` index.
    root: Value,
    /// `api/v1` → (hash, serialized document).
    v3: BTreeMap<String, (String, Bytes)>,
    v2: Bytes,
}

static DOCS: OnceLock<Docs> = OnceLock::new();

fn docs() -> &'static Docs {
    DOCS.get_or_init(build)
}

/// The served group-versions and their resources, in [`RESOURCES`] order.
fn group_versions() -> Vec<((&'static str, &'static str), Vec<&'static ResourceInfo>)> {
    let mut out: Vec<((&'static str, &'static str), Vec<&'static ResourceInfo>)> = Vec::new();
    for r in RESOURCES {
        match out.iter_mut().find(|(gv, _)| *gv == (r.group, r.version)) {
            Some((_, list)) => list.push(r),
            None => out.push(((r.group, r.version), vec![r])),
        }
    }
    out
}

/// `api/v1` or `apis/{group}/{version}`: the document's path under `/openapi/v3/`.
fn doc_path(group: &str, version: &str) -> String {
    paths::prefix(group, version).trim_start_matches('/').to_string()
}

/// The v3 document of one group-version.
fn v3_value(resources: &[&'static ResourceInfo]) -> Value {
    let mut path_map = Map::new();
    for res in resources {
        for (path, item) in paths::resource_paths(res) {
            path_map.insert(path, item);
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": path_map,
        "components": {
            "schemas": schemas::components(resources),
            "securitySchemes": {
                "BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}
            },
        },
    })
}

fn build() -> Docs {
    let mut v3 = BTreeMap::new();
    let mut index = Map::new();
    let mut v3_values = Vec::new();
    for ((group, version), resources) in group_versions() {
        let doc = v3_value(&resources);
        let bytes = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
        let hash = content_hash(&bytes);
        let path = doc_path(group, version);
        index.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}));
        v3.insert(path, (hash, bytes));
        v3_values.push(doc);
    }
    let v2 = Bytes::from(serde_json::to_vec(&v2_value(&v3_values)).unwrap_or_default());
    Docs { root: json!({"paths": index}), v3, v2 }
}

/// A stable 128-bit FNV-1a hash of a document, upper-case hex.
fn content_hash(bytes: &[u8]) -> String {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in bytes {
        h ^= u128::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032X}")
}

/// Builds every document now rather than on the first request (a few hundred
/// milliseconds of work); call it at startup.
pub fn prepare() {
    docs();
}

/// `GET /openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=…"}, …}}`.
pub fn v3_root() -> Value {
    docs().root.clone()
}

/// Normalizes `/openapi/v3/apis/apps/v1?hash=…`, `/apis/apps/v1` or `apis/apps/v1` to `apis/apps/v1`.
fn normalize(path: &str) -> &str {
    let path = path.split('?').next().unwrap_or_default().trim_matches('/');
    path.strip_prefix("openapi/v3/").unwrap_or(path)
}

/// `GET /openapi/v3/{path}` for `path` = `api/v1`, `apis/apps/v1`, …: the JSON document,
/// or `None` for a group-version knet does not serve.
pub fn v3_document(path: &str) -> Option<Bytes> {
    docs().v3.get(normalize(path)).map(|(_, bytes)| bytes.clone())
}

/// The content hash of a v3 document (the index's `?hash=`), usable as its ETag.
pub fn v3_hash(path: &str) -> Option<&'static str> {
    docs().v3.get(normalize(path)).map(|(hash, _)| hash.as_str())
}

/// `GET /openapi/v2`: Swagger 2.0 (JSON) for every served type.
pub fn v2_document() -> Bytes {
    docs().v2.clone()
}

/// Rewrites a v3 schema for Swagger 2.0: `#/definitions/` refs, and a lone
/// `allOf: [{$ref}]` back to a `$ref` with siblings as kube's v2 document has it.
fn schema_to_v2(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                if k == "$ref" {
                    let r = val.as_str().unwrap_or_default().replace("#/components/schemas/", "#/definitions/");
                    out.insert(k.clone(), json!(r));
                } else if k == "allOf" && val.as_array().is_some_and(|a| a.len() == 1) && !m.contains_key("properties")
                {
                    if let Some(Value::Object(inner)) = val.get(0).map(schema_to_v2) {
                        for (ik, iv) in inner {
                            out.insert(ik, iv);
                        }
                    }
                } else if k == "nullable" {
                    continue;
                } else {
                    out.insert(k.clone(), schema_to_v2(val));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(schema_to_v2).collect()),
        other => other.clone(),
    }
}

/// A v3 parameter as a v2 one: the schema's `type` moves up.
fn param_to_v2(p: &Value) -> Value {
    let mut out = Map::new();
    for key in ["name", "in", "description", "required"] {
        if let Some(v) = p.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(t) = p.pointer("/schema/type") {
        out.insert("type".into(), t.clone());
    }
    if p.get("name").and_then(Value::as_str) == Some("name") || p.get("in").and_then(Value::as_str) == Some("query") {
        out.insert("uniqueItems".into(), json!(true));
    }
    Value::Object(out)
}

fn operation_to_v2(op: &Value) -> Value {
    let mut out = Map::new();
    let mut params: Vec<Value> =
        op["parameters"].as_array().map(|a| a.iter().map(param_to_v2).collect()).unwrap_or_default();
    if let Some(body) = op.get("requestBody") {
        let consumes: Vec<String> =
            body["content"].as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default();
        let schema = body["content"].as_object().and_then(|c| c.values().next()).map(|c| schema_to_v2(&c["schema"]));
        params.insert(
            0,
            json!({"name": "body", "in": "body", "required": true, "schema": schema.unwrap_or(Value::Null)}),
        );
        out.insert("consumes".into(), json!(consumes));
    }
    let mut responses = Map::new();
    let mut produces: Vec<String> = Vec::new();
    for (code, r) in op["responses"].as_object().into_iter().flatten() {
        let mut resp = json!({"description": r["description"]});
        if let Some(c) = r["content"].as_object() {
            for t in c.keys() {
                if !produces.contains(t) {
                    produces.push(t.clone());
                }
            }
            if let Some(first) = c.values().next() {
                resp["schema"] = schema_to_v2(&first["schema"]);
            }
        }
        responses.insert(code.clone(), resp);
    }
    for key in ["description", "tags", "operationId"] {
        if let Some(v) = op.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    out.insert("produces".into(), json!(produces));
    out.insert("schemes".into(), json!(["https"]));
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    out.insert("responses".into(), Value::Object(responses));
    for key in ["x-kubernetes-action", "x-kubernetes-group-version-kind"] {
        if let Some(v) = op.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// Swagger 2.0 built from the v3 documents.
fn v2_value(v3_docs: &[Value]) -> Value {
    let mut definitions = Map::new();
    let mut v2_paths = Map::new();
    for doc in v3_docs {
        for (name, schema) in doc["components"]["schemas"].as_object().into_iter().flatten() {
            definitions.entry(name.clone()).or_insert_with(|| schema_to_v2(schema));
        }
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            let mut out = Map::new();
            for (verb, op) in item.as_object().into_iter().flatten() {
                if verb == "parameters" {
                    let ps: Vec<Value> = op.as_array().into_iter().flatten().map(param_to_v2).collect();
                    out.insert(verb.clone(), Value::Array(ps));
                } else {
                    out.insert(verb.clone(), operation_to_v2(op));
                }
            }
            v2_paths.insert(path.clone(), Value::Object(out));
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": GIT_VERSION},
        "paths": v2_paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}
        },
        "security": [{"BearerToken": []}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str) -> Value {
        let bytes = v3_document(path).unwrap_or_else(|| panic!("{path} not served"));
        serde_json::from_slice(&bytes).expect("valid JSON")
    }

    #[test]
    fn index_lists_every_group_version_with_hashed_urls() {
        let root = v3_root();
        let paths = root["paths"].as_object().expect("paths");
        for gv in [
            "api/v1",
            "apis/apps/v1",
            "apis/discovery.k8s.io/v1",
            "apis/networking.k8s.io/v1",
            "apis/coordination.k8s.io/v1",
            "apis/events.k8s.io/v1",
        ] {
            let url = paths[gv]["serverRelativeURL"].as_str().expect("url");
            let hash = v3_hash(gv).expect("hash");
            assert_eq!(url, format!("/openapi/v3/{gv}?hash={hash}"));
            assert!(v3_document(url).is_some(), "the index URL itself resolves");
        }
        assert_eq!(paths.len(), 6);
        assert!(v3_document("apis/batch/v1").is_none());
        assert!(v3_document("/apis/apps/v1").is_some());
    }

    #[test]
    fn explain_finds_the_kind_through_paths_and_components() {
        // What kubectl explain's template does: GVK from the path's operation, then the
        // component schema whose x-kubernetes-group-version-kind contains it.
        let d = doc("api/v1");
        let gvk = &d["paths"]["/api/v1/namespaces/{namespace}/services"]["get"]["x-kubernetes-group-version-kind"];
        let schemas = d["components"]["schemas"].as_object().expect("schemas");
        let found: Vec<&String> = schemas
            .iter()
            .filter(|(_, s)| s["x-kubernetes-group-version-kind"].as_array().is_some_and(|l| l.contains(gvk)))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(found, ["io.k8s.api.core.v1.Service"]);
        let ports = &schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
        assert_eq!(ports["items"]["$ref"], "#/components/schemas/io.k8s.api.core.v1.ServicePort");
        assert!(ports["description"]
            .as_str()
            .is_some_and(|s| s.contains("The list of ports that are exposed by this service")));
        assert!(schemas["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]["description"].is_string());
        let pods = doc("api/v1");
        assert!(pods["paths"].get("/api/v1/pods").is_some());
    }

    #[test]
    fn documents_are_cached_and_stable() {
        let a = v3_document("apis/apps/v1").expect("served");
        let b = v3_document("apis/apps/v1").expect("served");
        assert_eq!(a.as_ptr(), b.as_ptr(), "served from one cached buffer");
        assert_ne!(v3_hash("api/v1"), v3_hash("apis/apps/v1"));
        assert_eq!(content_hash(b"abc"), content_hash(b"abc"));
        assert_ne!(content_hash(b"abc"), content_hash(b"abd"));
    }

    #[test]
    fn v2_document_uses_definitions() {
        let v2: Value = serde_json::from_slice(&v2_document()).expect("valid JSON");
        assert_eq!(v2["swagger"], "2.0");
        let defs = v2["definitions"].as_object().expect("definitions");
        assert!(defs.contains_key("io.k8s.api.apps.v1.Deployment"));
        let spec = &defs["io.k8s.api.core.v1.Service"]["properties"]["spec"];
        assert_eq!(spec["$ref"], "#/definitions/io.k8s.api.core.v1.ServiceSpec");
        assert!(spec.get("allOf").is_none());
        let text = String::from_utf8_lossy(&v2_document()).to_string();
        assert!(!text.contains("#/components/schemas/"));
        let patch = &v2["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"];
        assert_eq!(patch["parameters"][0]["in"], "body");
        assert!(patch["consumes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("application/strategic-merge-patch+json"))));
    }
}
