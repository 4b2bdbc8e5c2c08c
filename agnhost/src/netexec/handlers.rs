//! netexec's HTTP endpoints.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::State;
use crate::{duration, log};

type Params = Query<Vec<(String, String)>>;

/// The first value of `key` (Go's `FormValue`), empty when absent.
fn param(params: &Params, key: &str) -> String {
    params.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// A plain-text answer.
fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], body.into()).into_response()
}

/// Go's `http.Error`: the message and a newline, with `nosniff`.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (
        status,
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8"), (http::header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
        format!("{message}\n"),
    )
        .into_response()
}

/// JSON the way Go's `json.Marshal` writes it (`<`, `>` and `&` escaped; they only occur inside strings).
pub fn go_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

pub fn router(state: Arc<State>, http_override: &str) -> axum::Router {
    let router = axum::Router::new()
        .route("/clientip", any(client_ip))
        .route("/header", any(header))
        .route("/dial", any(super::dial::handler))
        .route("/echo", any(echo))
        .route("/exit", any(exit))
        .route("/healthz", any(healthz))
        .route("/readyz", any(readyz))
        .route("/hostname", any(hostname))
        .route("/hostName", any(hostname))
        .route("/redirect", any(redirect))
        .route("/shell", any(shell))
        .route("/shutdown", any(shutdown))
        .fallback(root)
        .with_state(state);
    if http_override.is_empty() {
        return router;
    }
    let target: http::Uri = match http_override.parse() {
        Ok(uri) => uri,
        Err(e) => log::fatal(format!("override request failed: {e}")),
    };
    router.layer(axum::middleware::from_fn(move |mut request: Request, next: axum::middleware::Next| {
        *request.uri_mut() = target.clone();
        *request.method_mut() = http::Method::GET;
        next.run(request)
    }))
}

async fn root() -> Response {
    log::line("GET /");
    let now = jiff::Zoned::now();
    text(StatusCode::OK, format!("NOW: {}", now.strftime("%Y-%m-%d %H:%M:%S%.f %z %Z")))
}

async fn client_ip(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> Response {
    log::line("GET /clientip");
    text(StatusCode::OK, crate::listen::canonical(peer).to_string())
}

/// Go's canonical header key (`user-agent` → `User-Agent`).
fn canonical_key(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

async fn header(params: Params, headers: HeaderMap) -> Response {
    let key = param(&params, "key");
    if !key.is_empty() {
        log::line(format!("GET /header?key={key}"));
        let value = headers.get(key.as_str()).and_then(|v| v.to_str().ok()).unwrap_or_default();
        return text(StatusCode::OK, value);
    }
    log::line("GET /header");
    let mut all: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in &headers {
        all.entry(canonical_key(name.as_str())).or_default().push(String::from_utf8_lossy(value.as_bytes()).into());
    }
    let json = serde_json::to_value(all).unwrap_or_default();
    text(StatusCode::OK, go_json(&json))
}

async fn echo(params: Params) -> Response {
    let msg = param(&params, "msg");
    let code = param(&params, "code");
    log::line(format!("GET /echo?msg={msg}&code={code}"));
    if code.is_empty() {
        return text(StatusCode::OK, msg);
    }
    match code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok()) {
        Some(status) => text(status, msg),
        None => text(StatusCode::OK, format!("argument 'code' must be an integer or empty, got {code:?}\n")),
    }
}

async fn exit(Extract(state): Extract<Arc<State>>, params: Params) -> Response {
    let wait = param(&params, "wait");
    let timeout = param(&params, "timeout");
    let code = param(&params, "code");
    log::line(format!("GET /exit?code={code}&timeout={timeout}&wait={wait}"));
    let Ok(timeout_d) = (if timeout.is_empty() { Ok(Default::default()) } else { duration::parse(&timeout) }) else {
        return text(
            StatusCode::OK,
            format!("argument 'timeout' must be a valid golang duration or empty, got {timeout:?}\n"),
        );
    };
    let Ok(wait_d) = (if wait.is_empty() { Ok(Default::default()) } else { duration::parse(&wait) }) else {
        return text(
            StatusCode::OK,
            format!("argument 'wait' must be a valid golang duration or empty, got {wait:?}\n"),
        );
    };
    let Ok(code_n) = (if code.is_empty() { Ok(0) } else { code.parse::<i32>() }) else {
        return text(StatusCode::OK, format!("argument 'code' must be an integer [0-127] or empty, got {code:?}\n"));
    };
    log::line(format!(
        "Will begin shutdown in {wait_d:?}, allowing {timeout_d:?} for connections to close, then will exit with {code_n}"
    ));
    tokio::time::sleep(wait_d).await;
    if timeout_d.is_zero() {
        std::process::exit(code_n);
    }
    state.exit_code.store(code_n, Ordering::SeqCst);
    let _ = state.exit.send(timeout_d).await;
    text(StatusCode::OK, "")
}

async fn hostname() -> Response {
    log::line("GET /hostname");
    text(StatusCode::OK, log::hostname())
}

async fn healthz(Extract(state): Extract<Arc<State>>) -> Response {
    log::line("GET /healthz");
    if state.server_ready.load(Ordering::SeqCst) {
        text(StatusCode::OK, "")
    } else {
        text(StatusCode::PRECONDITION_FAILED, "")
    }
}

async fn readyz(Extract(state): Extract<Arc<State>>) -> Response {
    log::line("GET /readyz");
    if state.sigterm_received.load(Ordering::SeqCst) {
        text(StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    } else if state.server_ready.load(Ordering::SeqCst) {
        text(StatusCode::OK, "ok")
    } else {
        text(StatusCode::PRECONDITION_FAILED, "")
    }
}

async fn redirect(params: Params, method: http::Method) -> Response {
    let location = param(&params, "location");
    let code = param(&params, "code");
    log::line(format!("{method} /redirect?msg={location}&code={code}"));
    let status = if code.is_empty() {
        StatusCode::FOUND
    } else {
        match code.parse::<u16>().ok().and_then(|c| StatusCode::from_u16(c).ok()) {
            Some(s) => s,
            None => {
                return text(StatusCode::OK, format!("argument 'code' must be an integer or empty, got {code:?}\n"))
            }
        }
    };
    let mut response = text(status, "");
    if let Ok(value) = http::HeaderValue::from_str(&location) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    response
}

async fn shell(params: Params) -> Response {
    let mut cmd = param(&params, "shellCommand");
    if cmd.is_empty() {
        cmd = param(&params, "cmd");
    }
    log::line(format!("GET /shell?cmd={cmd}"));
    let mut output = serde_json::Map::new();
    match tokio::process::Command::new("/bin/sh").arg("-c").arg(&cmd).output().await {
        Ok(out) => {
            let mut combined = out.stdout;
            combined.extend_from_slice(&out.stderr);
            if !out.status.success() {
                let why = match (out.status.code(), std::os::unix::process::ExitStatusExt::signal(&out.status)) {
                    (Some(code), _) => format!("exit status {code}"),
                    (None, Some(sig)) => format!("signal: {}", signal_name(sig)),
                    (None, None) => "exit status unknown".to_string(),
                };
                output.insert("error".into(), why.into());
            }
            if !combined.is_empty() {
                output.insert("output".into(), String::from_utf8_lossy(&combined).into_owned().into());
            }
        }
        Err(e) => {
            output.insert("error".into(), format!("fork/exec /bin/sh: {e}").into());
        }
    }
    let json = serde_json::Value::Object(output);
    log::line(format!("Output: {json}"));
    text(StatusCode::OK, go_json(&json))
}

fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(nix::sys::signal::Signal::SIGKILL) => "killed".into(),
        Ok(nix::sys::signal::Signal::SIGTERM) => "terminated".into(),
        Ok(nix::sys::signal::Signal::SIGINT) => "interrupt".into(),
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}

async fn shutdown() -> Response {
    log::line("GET /shutdown");
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_are_canonical() {
        assert_eq!(canonical_key("user-agent"), "User-Agent");
        assert_eq!(canonical_key("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_key("accept"), "Accept");
    }

    #[test]
    fn json_escapes_like_go() {
        let v = serde_json::json!({"output": "<a&b>"});
        assert_eq!(go_json(&v), r#"{"output":"\u003ca\u0026b\u003e"}"#);
    }
}
