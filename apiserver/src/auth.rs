//! Authentication: who sent a request, as kube-apiserver decides it with a static token file and anonymous
//! access limited to the public health and version endpoints.
//!
//! - `Authorization: Bearer <token>` (scheme case-insensitive) with a known token → that user. A bearer token
//!   that is empty or unknown is refused with 401 on every path, as kube-apiserver refuses bad credentials
//!   before it would fall back to anonymous.
//! - No bearer token → `system:anonymous`, which may only reach `/healthz`, `/livez`, `/readyz` (and their
//!   sub-paths, e.g. `/readyz/ping`) and `/version`; anything else → 401 `Unauthorized`, the `Status` kubectl
//!   turns into "You must be logged in to the server (Unauthorized)".
//! - A WebSocket client that cannot set headers may send the token as the subprotocol
//!   `base64url.bearer.authorization.k8s.io.<base64url(token)>`, as kube-apiserver accepts.
//!
//! - A bearer token that is a service-account JWT is checked by [`crate::serviceaccount::authn`].
//!
//! The user is put into the request's extensions as a [`UserInfo`].

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use http::HeaderMap;

use crate::error::ApiError;
use crate::pki::TokenAuthenticator;

/// The name kube-apiserver gives requests without credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// The group of requests without credentials.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
const WEBSOCKET_TOKEN_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// An authenticated (or anonymous) user, as kube-apiserver's `user.Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The user of a request without credentials.
    pub fn anonymous() -> Self {
        UserInfo { username: ANONYMOUS_USER.into(), uid: String::new(), groups: vec![UNAUTHENTICATED_GROUP.into()] }
    }

    pub fn is_anonymous(&self) -> bool {
        self.username == ANONYMOUS_USER
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Whether anonymous requests may reach `path`.
pub fn is_public_path(path: &str) -> bool {
    if path == "/version" || path == "/version/" {
        return true;
    }
    ["/healthz", "/livez", "/readyz"]
        .iter()
        .any(|p| path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/')))
}

/// The credentials a request carries.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    None,
    Bearer(String),
    /// Credentials that can never be valid (an empty bearer token, an undecodable WebSocket token).
    Invalid,
}

fn credentials(headers: &HeaderMap) -> Credentials {
    if let Some(value) = headers.get(AUTHORIZATION) {
        let Ok(value) = value.to_str() else { return Credentials::Invalid };
        let mut parts = value.trim().splitn(3, ' ');
        let scheme = parts.next().unwrap_or_default();
        if scheme.eq_ignore_ascii_case("bearer") {
            return match parts.next() {
                Some(token) if !token.is_empty() => Credentials::Bearer(token.to_string()),
                _ => Credentials::Invalid,
            };
        }
        // Another scheme (Basic, …) is for no authenticator knet has: the request stays anonymous.
    }
    for value in headers.get_all(SEC_WEBSOCKET_PROTOCOL) {
        let Ok(value) = value.to_str() else { continue };
        for protocol in value.split(',').map(str::trim) {
            if let Some(encoded) = protocol.strip_prefix(WEBSOCKET_TOKEN_PREFIX) {
                return match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')) {
                    Ok(bytes) if !bytes.is_empty() => match String::from_utf8(bytes) {
                        Ok(token) => Credentials::Bearer(token),
                        Err(_) => Credentials::Invalid,
                    },
                    _ => Credentials::Invalid,
                };
            }
        }
    }
    Credentials::None
}

/// Decides who sent the request; `None` means 401.
pub fn authenticate_request(tokens: &TokenAuthenticator, path: &str, headers: &HeaderMap) -> Option<UserInfo> {
    match credentials(headers) {
        Credentials::Bearer(token) => tokens.authenticate(&token),
        Credentials::Invalid => None,
        Credentials::None if is_public_path(path) => Some(UserInfo::anonymous()),
        Credentials::None => None,
    }
}

/// Every way the API server knows its users.
pub struct Authenticator {
    pub tokens: Arc<TokenAuthenticator>,
    pub service_accounts: Option<crate::serviceaccount::ServiceAccountAuthenticator>,
}

impl Authenticator {
    /// Only the static token file.
    pub fn tokens_only(tokens: Arc<TokenAuthenticator>) -> Self {
        Authenticator { tokens, service_accounts: None }
    }

    /// Decides who sent the request; `None` means 401.
    pub async fn authenticate(&self, path: &str, headers: &HeaderMap) -> Option<UserInfo> {
        match credentials(headers) {
            Credentials::Bearer(token) => match self.tokens.authenticate(&token) {
                Some(user) => Some(user),
                None => match &self.service_accounts {
                    Some(sa) => sa.authenticate(&token).await,
                    None => None,
                },
            },
            Credentials::Invalid => None,
            Credentials::None if is_public_path(path) => Some(UserInfo::anonymous()),
            Credentials::None => None,
        }
    }
}

/// The axum middleware: see the module documentation.
pub async fn authenticate(State(auth): State<Arc<Authenticator>>, mut req: Request, next: Next) -> Response {
    match auth.authenticate(req.uri().path(), req.headers()).await {
        Some(user) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        None => ApiError::Unauthorized.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use axum::{Extension, Router};
    use http::{HeaderValue, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn tokens() -> (tempfile::TempDir, Arc<TokenAuthenticator>, String) {
        let dir = tempfile::tempdir().unwrap();
        let auth = TokenAuthenticator::load_or_create(dir.path(), None).unwrap();
        let token = auth.token_for("admin").unwrap();
        (dir, Arc::new(auth), token)
    }

    fn app(tokens: Arc<TokenAuthenticator>) -> Router {
        Router::new()
            .fallback(get(|Extension(user): Extension<UserInfo>| async move { user.username }))
            .layer(axum::middleware::from_fn_with_state(Arc::new(Authenticator::tokens_only(tokens)), authenticate))
    }

    async fn call(app: &Router, path: &str, auth: Option<&str>) -> (StatusCode, String) {
        let mut req = http::Request::get(path).body(Body::empty()).unwrap();
        if let Some(a) = auth {
            req.headers_mut().insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[test]
    fn public_paths() {
        for p in ["/healthz", "/livez", "/readyz", "/readyz/ping", "/livez/etcd", "/version", "/version/"] {
            assert!(is_public_path(p), "{p}");
        }
        for p in ["/", "/api", "/readyzz", "/healthzx/y", "/version/x", "/api/v1/namespaces", "/openapi/v3"] {
            assert!(!is_public_path(p), "{p}");
        }
    }

    #[tokio::test]
    async fn anonymous_reaches_only_public_paths() {
        let (_dir, tokens, _) = tokens();
        let app = app(tokens);
        assert_eq!(call(&app, "/readyz", None).await, (StatusCode::OK, ANONYMOUS_USER.to_string()));
        assert_eq!(call(&app, "/version", None).await.0, StatusCode::OK);
        let (status, body) = call(&app, "/api/v1/namespaces", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let status_obj: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            status_obj,
            serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"Unauthorized","reason":"Unauthorized","code":401})
        );
        // Another scheme leaves the request anonymous.
        assert_eq!(call(&app, "/api", Some("Basic YTpi")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(call(&app, "/healthz", Some("Basic YTpi")).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn bearer_tokens() {
        let (_dir, tokens, token) = tokens();
        let app = app(tokens);
        assert_eq!(
            call(&app, "/api/v1/pods", Some(&format!("Bearer {token}"))).await,
            (StatusCode::OK, "admin".into())
        );
        assert_eq!(call(&app, "/api", Some(&format!("bearer {token}"))).await.0, StatusCode::OK);
        assert_eq!(call(&app, "/api", Some("Bearer nope")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(call(&app, "/api", Some("Bearer")).await.0, StatusCode::UNAUTHORIZED);
        // Bad credentials are refused even where anonymous would be let in.
        assert_eq!(call(&app, "/readyz", Some("Bearer nope")).await.0, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn user_info_goes_with_the_token() {
        let (_dir, tokens, token) = tokens();
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        let user = authenticate_request(&tokens, "/api", &headers).unwrap();
        assert!(user.in_group("system:masters") && user.in_group("system:authenticated"));
        assert!(!user.is_anonymous());
        assert!(authenticate_request(&tokens, "/livez", &HeaderMap::new()).unwrap().is_anonymous());
    }

    #[test]
    fn websocket_protocol_token() {
        let (_dir, tokens, token) = tokens();
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token);
        let mut headers = HeaderMap::new();
        let value = format!("v5.channel.k8s.io, {WEBSOCKET_TOKEN_PREFIX}{encoded}");
        headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_str(&value).unwrap());
        assert_eq!(authenticate_request(&tokens, "/api", &headers).unwrap().username, "admin");
        headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("base64url.bearer.authorization.k8s.io.!!"));
        assert_eq!(authenticate_request(&tokens, "/readyz", &headers), None);
    }
}
