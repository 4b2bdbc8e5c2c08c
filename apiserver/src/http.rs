//! The HTTP front: routing of Kubernetes API paths, content negotiation (JSON, YAML,
//! Table, PartialObjectMetadata), watch streaming, discovery and health endpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::registry::decode;
use crate::registry::strategy::Part;
use crate::registry::{DeleteOptions, ListOptions, PatchType, Registry, WatchEvent, WatchEventType, WriteOptions};
use crate::resources::{self, ResourceInfo};
use crate::tables::{self, IncludeObject, TableOptions};
use crate::{discovery, openapi};

/// The largest request body accepted (kube-apiserver's limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Shared state of the handlers.
pub struct AppState {
    pub registry: Arc<Registry>,
    /// `host:port` clients should use, for `/api`'s serverAddressByClientCIDRs.
    pub server_address: String,
    pub metrics: Arc<Metrics>,
    pub ready: AtomicBool,
    /// How to reach kubelets for `pods/log`, `exec`, `attach`, `portforward` (none: those answer 503).
    pub kubelet: Option<Arc<crate::kubelet::KubeletClient>>,
    /// Issues service-account tokens for `serviceaccounts/token` (none: 503).
    pub token_issuer: Option<Arc<crate::serviceaccount::TokenIssuer>>,
}

/// The router without authentication (the binary adds it as a layer).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/version", get(|| async { json_response(StatusCode::OK, &discovery::version_info()) }))
        .route("/metrics", get(metrics))
        .route("/api", get(api_root))
        .route("/apis", get(apis_root))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(|| async { json_response(StatusCode::OK, &openapi::v3_root()) }))
        .route("/openapi/v3/{*path}", get(openapi_v3))
        .fallback(resource_handler)
        .with_state(state)
}

async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    if st.ready.load(Ordering::Relaxed) {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready: bootstrapping").into_response()
    }
}

async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    st.metrics.set_revision(st.registry.store.revision());
    ([(header::CONTENT_TYPE, knet_component_base::health::CONTENT_TYPE)], st.metrics.encode()).into_response()
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| code.into_response())
}

fn raw_json(b: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], b).into_response()
}

fn accept(headers: &HeaderMap) -> String {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn discovery_response(headers: &HeaderMap, core: bool, server_address: &str) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let Some(form) = discovery::negotiate(accept) else {
        return ApiError::NotAcceptable(format!(
            "{}, {}, {}",
            discovery::CONTENT_TYPE_V2,
            discovery::CONTENT_TYPE_V2BETA1,
            discovery::CONTENT_TYPE_JSON
        ))
        .into_response();
    };
    let doc = match form {
        discovery::DiscoveryForm::Unaggregated if core => discovery::core_versions(server_address),
        discovery::DiscoveryForm::Unaggregated => discovery::group_list(),
        f => discovery::aggregated_as(core, f),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, form.content_type())
        .header(header::VARY, "Accept")
        .body(Body::from(serde_json::to_vec(&doc).unwrap_or_default()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn api_root(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    discovery_response(&headers, true, &st.server_address)
}

async fn apis_root(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    discovery_response(&headers, false, &st.server_address)
}

async fn openapi_v2(headers: HeaderMap) -> Response {
    let accept = accept(&headers);
    let json_ok = accept.is_empty()
        || accept.split(',').any(|p| {
            let p = p.trim();
            p.starts_with("application/json") || p.starts_with("*/*")
        });
    if !json_ok {
        return ApiError::NotAcceptable("application/json".into()).into_response();
    }
    raw_json(openapi::v2_document())
}

async fn openapi_v3(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    match (openapi::v3_document(&path), openapi::v3_hash(&path)) {
        (Some(b), Some(hash)) => Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ETAG, format!("\"{hash}\""))
            .header(header::CACHE_CONTROL, "public, immutable")
            .body(Body::from(b))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
        (Some(b), None) => raw_json(b),
        _ => ApiError::NoSuchPath.into_response(),
    }
}

/// Where a resource request goes.
#[derive(Debug)]
struct Target {
    res: &'static ResourceInfo,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    watch_path: bool,
}

enum Routed {
    ResourceList(String, String),
    Group(String),
    Resource(Target),
}

fn route(path: &str) -> Result<Routed, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => return Ok(Routed::Group((*g).to_string())),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::NoSuchPath),
    };
    if rest.is_empty() {
        return Ok(Routed::ResourceList(group.to_string(), version.to_string()));
    }
    let (watch_path, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    if rest.iter().any(|s| s.is_empty()) {
        return Err(ApiError::NoSuchPath);
    }
    let target = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if resources::find(group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            let res = resources::find(group, version, plural).ok_or(ApiError::NoSuchPath)?;
            if tail.len() > 2 {
                return Err(ApiError::NoSuchPath);
            }
            Target {
                res,
                namespace: Some((*ns).to_string()),
                name: tail.first().map(|s| s.to_string()),
                sub: tail.get(1).map(|s| s.to_string()),
                watch_path,
            }
        }
        [plural, tail @ ..] => {
            let res = resources::find(group, version, plural).ok_or(ApiError::NoSuchPath)?;
            if tail.len() > 2 || (res.namespaced && !tail.is_empty()) {
                return Err(ApiError::NoSuchPath);
            }
            Target {
                res,
                namespace: None,
                name: tail.first().map(|s| s.to_string()),
                sub: tail.get(1).map(|s| s.to_string()),
                watch_path,
            }
        }
        [] => return Err(ApiError::NoSuchPath),
    };
    if let Some(sub) = &target.sub {
        if !target.res.has_subresource(sub) {
            return Err(ApiError::NoSuchPath);
        }
    }
    Ok(Routed::Resource(target))
}

pub(crate) fn query_pairs(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query().map(url_decode_pairs).unwrap_or_default()
}

/// Decoded `key=value` pairs, in order (`+` is a space, a malformed `%` sequence stays as it is).
fn url_decode_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The media types a request body may have.
const BODY_MEDIA_TYPES: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// Decodes a request body by Content-Type (JSON, YAML, or Kubernetes protobuf, which is decoded into JSON).
fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let base = ct.split(';').next().unwrap_or("").trim();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request body is empty; an object is required".into()));
    }
    match base {
        "application/json"
        | ""
        | "*/*"
        | "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "application/apply-patch+yaml" => {
            if decode::yaml_flow_too_deep(body, decode::MAX_YAML_FLOW_DEPTH) {
                return Err(ApiError::BadRequest(format!(
                    "error converting YAML to JSON: flow collections nested deeper than {} levels",
                    decode::MAX_YAML_FLOW_DEPTH
                )));
            }
            let v: serde_yaml::Value = serde_yaml::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}")))?;
            serde_json::to_value(v).map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}")))
        }
        crate::protobuf::CONTENT_TYPE => Ok(crate::protobuf::decode_request_body(body)?),
        // kube-apiserver lists what it accepts (the message starts "… accepted media types include:").
        _ => Err(ApiError::UnsupportedMediaType(BODY_MEDIA_TYPES.into())),
    }
}

/// What the client asked the answer to look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Json,
    Yaml,
    Table(TableOptions),
    PartialMetadata,
}

fn shape(headers: &HeaderMap, q: &[(String, String)]) -> Result<Shape, ApiError> {
    // Protobuf request bodies are decoded, but answers are only JSON or YAML: a client that takes nothing
    // else (client-go sends `application/vnd.kubernetes.protobuf, */*`, which is fine) is told so.
    let acc = accept(headers);
    if !acc.trim().is_empty() && acc.split(',').all(|p| p.trim().starts_with(crate::protobuf::CONTENT_TYPE)) {
        return Err(ApiError::NotAcceptable("application/json, application/yaml".into()));
    }
    let include = IncludeObject::parse(q.iter().find(|(k, _)| k == "includeObject").map(|(_, v)| v.as_str()))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let no_headers = q.iter().any(|(k, v)| k == "noHeaders" && v == "true");
    Ok(shape_of(headers, TableOptions { include, no_headers }))
}

fn shape_of(headers: &HeaderMap, topts: TableOptions) -> Shape {
    for part in accept(headers).split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=Table") && p.contains("g=meta.k8s.io") {
            return Shape::Table(topts);
        }
        if p.contains("as=PartialObjectMetadata") && p.contains("g=meta.k8s.io") {
            return Shape::PartialMetadata;
        }
        if p.starts_with("application/yaml") {
            return Shape::Yaml;
        }
        if p.starts_with("application/json") || p.starts_with("*/*") {
            return Shape::Json;
        }
    }
    Shape::Json
}

fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

fn encode_value(shape: Shape, code: StatusCode, v: &Value, warnings: &[String]) -> Response {
    let (ct, body) = match shape {
        Shape::Yaml => ("application/yaml", serde_yaml::to_string(v).map(String::into_bytes).unwrap_or_default()),
        _ => ("application/json", serde_json::to_vec(v).unwrap_or_default()),
    };
    let mut resp = Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, ct)
        .body(Body::from(body))
        .unwrap_or_else(|_| code.into_response());
    for w in warnings {
        if let Ok(h) = HeaderValue::from_str(&format!("299 - {:?}", w)) {
            resp.headers_mut().append(header::WARNING, h);
        }
    }
    resp
}

/// A JSON list answer, assembled from the objects' cached encodings.
fn list_json(res: &ResourceInfo, meta: &Value, items: &[Arc<crate::registry::cache::Obj>]) -> Response {
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        Value::from(res.list_kind),
        Value::from(res.api_version()),
        meta
    );
    let mut body = Vec::with_capacity(head.len() + items.iter().map(|o| o.json().len() + 1).sum::<usize>() + 2);
    body.extend_from_slice(head.as_bytes());
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(o.json());
    }
    body.extend_from_slice(b"]}");
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An object answer, shaped per Accept.
fn object_response(shape: Shape, res: &ResourceInfo, code: StatusCode, obj: &Value, warnings: &[String]) -> Response {
    match shape {
        Shape::Table(inc) => {
            let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion")});
            let t = tables::table_with(res, std::slice::from_ref(obj), meta, inc, jiff::Timestamp::now());
            encode_value(Shape::Json, code, &t, warnings)
        }
        Shape::PartialMetadata => encode_value(Shape::Json, code, &partial_metadata(obj), warnings),
        s => encode_value(s, code, obj, warnings),
    }
}

fn verb_of(method: &Method, t: &Target, watch: bool) -> &'static str {
    match (method.as_str(), t.name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    }
}

async fn resource_handler(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let start = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let q = query_pairs(&parts.uri);
    let routed = match route(&path) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let t = match routed {
        Routed::ResourceList(g, v) => {
            return match discovery::resource_list(&g, &v) {
                Some(doc) => json_response(StatusCode::OK, &doc),
                None => ApiError::NoSuchPath.into_response(),
            }
        }
        Routed::Group(g) => {
            return match discovery::group(&g) {
                Some(doc) => json_response(StatusCode::OK, &doc),
                None => ApiError::NoSuchPath.into_response(),
            }
        }
        Routed::Resource(t) => t,
    };
    if let (Some(sub), Some(name), Some(ns), "", "pods") =
        (t.sub.as_deref(), t.name.as_deref(), t.namespace.as_deref(), t.res.group, t.res.plural)
    {
        if let Some(kind) = crate::kubelet::location::Connect::from_subresource(sub) {
            let resp = match crate::kubelet::proxy::serve(&st, kind, ns, name, &q, parts).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            };
            let code = resp.status().as_u16();
            st.metrics.observe_request(
                if sub == "log" { "get" } else { "connect" },
                t.res.plural,
                code,
                start.elapsed(),
            );
            tracing::debug!(subresource = sub, namespace = ns, name, code, "connect request");
            return resp;
        }
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return ApiError::TooLarge.into_response(),
    };
    let watch = t.watch_path || q.iter().any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let verb = verb_of(&parts.method, &t, watch);
    let resp = match serve(&st, &parts.method, &parts.headers, &q, &t, watch, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let code = resp.status().as_u16();
    st.metrics.observe_request(verb, t.res.plural, code, start.elapsed());
    tracing::debug!(
        verb,
        resource = t.res.plural,
        namespace = t.namespace.as_deref().unwrap_or(""),
        name = t.name.as_deref().unwrap_or(""),
        code,
        "request"
    );
    resp
}

async fn serve(
    st: &Arc<AppState>,
    method: &Method,
    headers: &HeaderMap,
    q: &[(String, String)],
    t: &Target,
    watch: bool,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let reg = &st.registry;
    let res = t.res;
    let ns = t.namespace.as_deref();
    let shape = shape(headers, q)?;
    match (method.clone(), t.name.as_deref(), t.sub.as_deref()) {
        (Method::GET, None, None) if watch => {
            let opts = ListOptions::from_query(q)?;
            let stream = reg.watch(res, ns, &opts).await?;
            Ok(watch_response(st.clone(), res, shape, stream))
        }
        (Method::GET, None, None) => {
            let opts = ListOptions::from_query(q)?;
            let listing = reg.list(res, ns, &opts).await?;
            let mut meta = json!({"resourceVersion": listing.resource_version.to_string()});
            if let Some(c) = &listing.continue_token {
                meta["continue"] = json!(c);
            }
            Ok(match shape {
                Shape::Table(inc) => {
                    let values: Vec<Value> = listing.items.iter().map(|o| o.value.clone()).collect();
                    encode_value(
                        Shape::Json,
                        StatusCode::OK,
                        &tables::table_with(res, &values, meta, inc, jiff::Timestamp::now()),
                        &[],
                    )
                }
                Shape::PartialMetadata => {
                    let items: Vec<Value> = listing.items.iter().map(|o| partial_metadata(&o.value)).collect();
                    encode_value(
                        Shape::Json,
                        StatusCode::OK,
                        &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
                        &[],
                    )
                }
                Shape::Yaml => {
                    let items: Vec<Value> = listing.items.iter().map(|o| o.value.clone()).collect();
                    encode_value(
                        Shape::Yaml,
                        StatusCode::OK,
                        &json!({"kind": res.list_kind, "apiVersion": res.api_version(), "metadata": meta, "items": items}),
                        &[],
                    )
                }
                Shape::Json => list_json(res, &meta, &listing.items),
            })
        }
        (Method::GET, Some(name), None | Some("status")) => {
            let obj = reg.get(res, ns, name).await?;
            Ok(object_response(shape, res, StatusCode::OK, &obj, &[]))
        }
        (Method::GET, Some(name), Some("scale")) => {
            let scale = reg.get_scale(res, ns, name).await?;
            Ok(match shape {
                Shape::Table(topts) => encode_value(
                    Shape::Json,
                    StatusCode::OK,
                    &tables::scale_table(&scale, topts, jiff::Timestamp::now()),
                    &[],
                ),
                s => encode_value(plain(s), StatusCode::OK, &scale, &[]),
            })
        }
        (Method::POST, None, None) => {
            if res.namespaced && ns.is_none() {
                return Err(ApiError::MethodNotAllowed);
            }
            let obj = decode_body(headers, body)?;
            let opts = WriteOptions::from_query(q)?;
            let w = reg.create(res, ns, obj, &opts).await?;
            Ok(object_response(shape, res, w.code, &w.object, &w.warnings))
        }
        (Method::POST, Some(name), Some("token")) => {
            let issuer = st.token_issuer.as_ref().ok_or_else(|| {
                ApiError::Unavailable("the API server has no service-account token issuer configured".into())
            })?;
            let request = decode_body(headers, body)?;
            let answer = issuer.token_request(reg, ns.unwrap_or("default"), name, &request).await?;
            Ok(encode_value(plain(shape), StatusCode::CREATED, &answer, &[]))
        }
        (Method::POST, Some(name), Some("binding")) => {
            let b = decode_body(headers, body)?;
            let opts = WriteOptions::from_query(q)?;
            let status = reg.bind(res, ns, name, &b, &opts).await?;
            Ok(encode_value(Shape::Json, StatusCode::CREATED, &status, &[]))
        }
        (Method::PUT, Some(name), Some("scale")) => {
            let scale = decode_body(headers, body)?;
            let opts = WriteOptions::from_query(q)?;
            let out = reg.update_scale(res, ns, name, &opts, |_| Ok(scale.clone())).await?;
            Ok(encode_value(plain(shape), StatusCode::OK, &out, &[]))
        }
        (Method::PUT, Some(name), sub) => {
            let part = Part::from_subresource(sub).ok_or(ApiError::MethodNotAllowed)?;
            let obj = decode_body(headers, body)?;
            let opts = WriteOptions::from_query(q)?;
            let w = reg.update(res, ns, name, part, obj, &opts).await?;
            Ok(object_response(shape, res, w.code, &w.object, &w.warnings))
        }
        (Method::PATCH, Some(name), sub) => {
            let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let ptype = PatchType::from_content_type(ct)
                .ok_or_else(|| ApiError::UnsupportedMediaType(PatchType::ACCEPTED.into()))?;
            let patch_doc = match ptype {
                PatchType::Apply => decode_body(&yaml_headers(), body)?,
                _ => serde_json::from_slice::<Value>(body)
                    .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?,
            };
            let opts = WriteOptions::from_query(q)?;
            if sub == Some("scale") {
                let out = reg.patch_scale(res, ns, name, ptype, &patch_doc, &opts).await?;
                return Ok(encode_value(plain(shape), StatusCode::OK, &out, &[]));
            }
            let part = Part::from_subresource(sub).ok_or(ApiError::MethodNotAllowed)?;
            let w = reg.patch(res, ns, name, part, ptype, &patch_doc, &opts).await?;
            Ok(object_response(shape, res, w.code, &w.object, &w.warnings))
        }
        (Method::DELETE, Some(name), None) => {
            let b = if body.iter().all(u8::is_ascii_whitespace) { None } else { Some(decode_body(headers, body)?) };
            let opts = DeleteOptions::from_query_and_body(q, b.as_ref())?;
            let (obj, code) = reg.delete(res, ns, name, &opts).await?;
            Ok(object_response(plain(shape), res, code, &obj, &[]))
        }
        (Method::DELETE, None, None) => {
            let b = if body.iter().all(u8::is_ascii_whitespace) { None } else { Some(decode_body(headers, body)?) };
            let opts = DeleteOptions::from_query_and_body(q, b.as_ref())?;
            let lopts = ListOptions::from_query(q)?;
            let out = reg.delete_collection(res, ns, &lopts, &opts).await?;
            Ok(encode_value(plain(shape), StatusCode::OK, &out, &[]))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// Shapes that only make sense for objects of the resource (not Scale, Status, lists of deletes).
fn plain(shape: Shape) -> Shape {
    match shape {
        Shape::Yaml => Shape::Yaml,
        _ => Shape::Json,
    }
}

fn yaml_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    h
}

/// Streams watch events as newline-delimited JSON.
fn watch_response(
    st: Arc<AppState>,
    res: &'static ResourceInfo,
    shape: Shape,
    events: impl futures::Stream<Item = WatchEvent> + Send + 'static,
) -> Response {
    let guard = st.metrics.watch_started(res.plural);
    let body = events.map(move |ev| {
        let _keep = &guard;
        let head = format!("{{\"type\":\"{}\",\"object\":", ev.kind.as_str());
        let shaped = match (shape, ev.kind) {
            (Shape::Table(inc), WatchEventType::Added | WatchEventType::Modified | WatchEventType::Deleted) => {
                let meta = json!({"resourceVersion": ev.object.value.pointer("/metadata/resourceVersion")});
                Some(tables::table_with(res, std::slice::from_ref(&ev.object.value), meta, inc, jiff::Timestamp::now()))
            }
            (Shape::PartialMetadata, WatchEventType::Added | WatchEventType::Modified | WatchEventType::Deleted) => {
                Some(partial_metadata(&ev.object.value))
            }
            _ => None,
        };
        let mut line = head.into_bytes();
        match shaped {
            Some(v) => line.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default()),
            None => line.extend_from_slice(ev.object.json()),
        }
        line.extend_from_slice(b"}\n");
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_paths() {
        let Routed::Resource(t) = route("/api/v1/namespaces/default/services/x/status").ok().unwrap() else { panic!() };
        assert_eq!(t.res.plural, "services");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("x"));
        assert_eq!(t.sub.as_deref(), Some("status"));
        let Routed::Resource(t) = route("/api/v1/namespaces/foo").ok().unwrap() else { panic!() };
        assert_eq!(t.res.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("foo"));
        let Routed::Resource(t) = route("/api/v1/namespaces/foo/finalize").ok().unwrap() else { panic!() };
        assert_eq!(t.sub.as_deref(), Some("finalize"));
        let Routed::Resource(t) = route("/apis/apps/v1/deployments").ok().unwrap() else { panic!() };
        assert!(t.namespace.is_none() && t.name.is_none());
        let Routed::Resource(t) = route("/api/v1/watch/namespaces/default/pods").ok().unwrap() else { panic!() };
        assert!(t.watch_path);
        assert!(route("/api/v1/pods/foo").is_err());
        assert!(route("/api/v1/namespaces/default/services/x/bogus").is_err());
        assert!(route("/api/v1/frobs").is_err());
        assert!(matches!(route("/apis/apps").ok().unwrap(), Routed::Group(_)));
    }

    #[test]
    fn decodes_queries() {
        let q = url_decode_pairs("labelSelector=app%3Dnginx%2Ctier+in+(a)&watch=1&x=%zz");
        assert_eq!(q[0], ("labelSelector".into(), "app=nginx,tier in (a)".into()));
        assert_eq!(q[1], ("watch".into(), "1".into()));
        assert_eq!(q[2].1, "%zz");
        assert_eq!(url_decode_pairs("a=%&b=a%4&&c")[..2], [("a".into(), "%".into()), ("b".into(), "a%4".into())]);
        assert_eq!(url_decode_pairs("a=%&b=a%4&&c")[2], ("c".into(), String::new()));
    }

    #[test]
    fn protobuf_only_accept_is_not_acceptable() {
        let with = |a: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(a));
            shape(&h, &[])
        };
        assert!(matches!(with("application/vnd.kubernetes.protobuf"), Err(ApiError::NotAcceptable(_))));
        assert!(matches!(with("application/vnd.kubernetes.protobuf;stream=watch"), Err(ApiError::NotAcceptable(_))));
        assert_eq!(with("application/vnd.kubernetes.protobuf, */*").ok(), Some(Shape::Json));
        assert_eq!(with("application/vnd.kubernetes.protobuf,application/json").ok(), Some(Shape::Json));
        assert_eq!(shape(&HeaderMap::new(), &[]).ok(), Some(Shape::Json));
    }

    #[test]
    fn bodies() {
        let mut h = HeaderMap::new();
        assert!(matches!(decode_body(&h, b"{not json"), Err(ApiError::BadRequest(_))));
        assert!(matches!(decode_body(&h, b"  "), Err(ApiError::BadRequest(_))));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
        assert_eq!(decode_body(&h, b"a: 1\n").unwrap(), json!({"a": 1}));
        assert!(matches!(decode_body(&h, b"a: [1\n"), Err(ApiError::BadRequest(_))));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.kubernetes.protobuf"));
        assert!(matches!(decode_body(&h, b"x"), Err(ApiError::BadRequest(_))));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/cbor"));
        assert!(matches!(decode_body(&h, b"x"), Err(ApiError::UnsupportedMediaType(_))));
    }
}
