//! Proxying a pod's connect subresources to its kubelet: the request is checked ([`super::location`]), sent to
//! the node's kubelet API, and the answer passed back — for an upgrade (WebSocket or SPDY) the kubelet's
//! `101 Switching Protocols` and then the bytes both ways, untouched; for logs the streamed body, with a
//! kubelet error turned into a `Status` as kube-apiserver's log REST does.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{
    CONNECTION, CONTENT_TYPE, HOST, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Empty};

use hyper_util::rt::TokioIo;

use super::location::{self, Connect};
use crate::error::ApiError;
use crate::http::AppState;
use crate::resources;

/// The WebSocket subprotocol that carries a bearer token; it is for the API server only.
const TOKEN_PROTOCOL_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";
/// The most of a kubelet's error answer read into a `Status`.
const MAX_ERROR_BODY: usize = 64 * 1024;

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        && headers.contains_key(UPGRADE)
}

/// The headers an upgrade needs on its way to the kubelet (credentials for the API server stay behind).
fn upgrade_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [CONNECTION, UPGRADE, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION] {
        for v in from.get_all(&name) {
            to.append(name.clone(), v.clone());
        }
    }
    let protocols: Vec<&str> = from
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.starts_with(TOKEN_PROTOCOL_PREFIX))
        .collect();
    if !protocols.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&protocols.join(", ")) {
            to.insert(SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    for v in from.get_all("x-stream-protocol-version") {
        to.append("x-stream-protocol-version", v.clone());
    }
}

fn plain(code: StatusCode, msg: String) -> Response {
    (code, [(CONTENT_TYPE, "text/plain; charset=utf-8")], msg).into_response()
}

/// Serves `pods/{name}/{log,exec,attach,portforward}`.
pub async fn serve(
    st: &Arc<AppState>,
    kind: Connect,
    namespace: &str,
    name: &str,
    q: &[(String, String)],
    mut parts: http::request::Parts,
) -> Result<Response, ApiError> {
    let Some(client) = st.kubelet.as_ref() else {
        return Err(ApiError::Unavailable("the API server has no kubelet client configured".into()));
    };
    let method = parts.method.clone();
    match kind {
        Connect::Log if method != Method::GET => return Err(ApiError::MethodNotAllowed),
        _ if method != Method::GET && method != Method::POST => return Err(ApiError::MethodNotAllowed),
        _ => {}
    }
    let pods = resources::find("", "v1", "pods").ok_or(ApiError::NoSuchPath)?;
    let pod = st.registry.get(pods, Some(namespace), name).await?;
    let requested = q.iter().find(|(k, _)| k == "container").map(|(_, v)| v.as_str());
    let container = match kind {
        Connect::PortForward => String::new(),
        _ => location::container(&pod, name, requested)?,
    };
    let query = match kind {
        Connect::Log => {
            let (previous, query) = location::log_query(pods, name, q)?;
            if location::node_name(&pod).is_none() {
                // Not scheduled yet: nothing has been logged.
                return Ok(([(CONTENT_TYPE, "text/plain")], "").into_response());
            }
            location::check_log_status(&pod, name, &container, previous).map_err(ApiError::BadRequest)?;
            query
        }
        _ => location::stream_query(kind, q),
    };
    let Some(node_name) = location::node_name(&pod) else {
        return Err(ApiError::BadRequest(format!("pod {name} does not have a host assigned")));
    };
    if matches!(kind, Connect::Exec | Connect::Attach) {
        if let Err(msg) = location::check_running(&pod, &container) {
            // The kubelet's own answer for a container it does not run: plain text, so kubectl shows
            // "unable to upgrade connection: …".
            return Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, msg));
        }
    }
    let nodes = resources::find("", "v1", "nodes").ok_or(ApiError::NoSuchPath)?;
    let node = st.registry.get(nodes, None, node_name).await?;
    let (host, port) = location::kubelet_endpoint(&node, &client.preferred_address_types)?;

    let path = location::kubelet_path(kind, namespace, name, &container);
    let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
    let upgrade = kind != Connect::Log && is_upgrade(&parts.headers);
    let mut req = http::Request::builder()
        .method(if kind == Connect::Log { Method::GET } else { method })
        .uri(uri)
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::Internal(format!("building the kubelet request: {e}")))?;
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    if let Ok(v) = HeaderValue::from_str(&authority) {
        req.headers_mut().insert(HOST, v);
    }
    if upgrade {
        upgrade_headers(&parts.headers, req.headers_mut());
    }
    let client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let mut resp =
        client.send(&host, port, req).await.map_err(|e| ApiError::Internal(format!("error dialing backend: {e}")))?;
    tracing::debug!(node = node_name, namespace, pod = name, status = %resp.status(), "kubelet answered");

    if upgrade && resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::BadRequest("the connection cannot be upgraded (HTTP/1.1 is required)".into()));
        };
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        let mut answer = Response::new(Body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        for (k, v) in resp.headers() {
            if k != http::header::CONTENT_LENGTH && k != http::header::TRANSFER_ENCODING {
                answer.headers_mut().append(k.clone(), v.clone());
            }
        }
        let (ns, pod) = (namespace.to_string(), name.to_string());
        tokio::spawn(async move {
            let (backend, client) = match tokio::join!(backend_upgrade, client_upgrade) {
                (Ok(b), Ok(c)) => (b, c),
                (b, c) => {
                    tracing::info!(namespace = %ns, pod = %pod, backend_ok = b.is_ok(), client_ok = c.is_ok(), "upgrade failed");
                    return;
                }
            };
            let (mut backend, mut client) = (TokioIo::new(backend), TokioIo::new(client));
            let copied = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
            tracing::debug!(namespace = %ns, pod = %pod, ?copied, "stream proxy ended");
        });
        return Ok(answer);
    }

    let status = resp.status();
    if kind == Connect::Log && !status.is_success() {
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BODY).collect().await;
        let text = body.map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string()).unwrap_or_default();
        return Err(match status {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(text),
            StatusCode::FORBIDDEN => ApiError::Forbidden(text),
            _ => ApiError::Internal(text),
        });
    }
    let (head, body) = resp.into_parts();
    let mut answer = Response::new(Body::new(body));
    *answer.status_mut() = status;
    let content_type =
        head.headers.get(CONTENT_TYPE).cloned().unwrap_or_else(|| HeaderValue::from_static("text/plain"));
    answer.headers_mut().insert(CONTENT_TYPE, content_type);
    Ok(answer)
}
