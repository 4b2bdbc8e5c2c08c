//! Connection upgrades as the kubelet's streaming server negotiates them: a WebSocket (RFC 6455) with a
//! subprotocol, or SPDY/3.1 with `X-Stream-Protocol-Version`. The choice of protocol is pure (first protocol the
//! client lists that the server supports, as `wsstream` and `httpstream.Handshake` choose); the 101 answers are
//! built here and the connection is taken over with hyper's upgrade once the answer is sent.

use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, UPGRADE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

/// The header carrying SPDY stream protocol versions.
pub const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// The header listing what the server accepts when negotiation fails.
pub const ACCEPTED_PROTOCOLS_HEADER: &str = "x-accepted-stream-protocol-versions";

/// What kind of upgrade a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeRequest {
    /// A WebSocket handshake with its key and the offered subprotocols, in order.
    WebSocket { key: String, protocols: Vec<String> },
    /// A SPDY/3.1 upgrade with the offered stream protocols, in order.
    Spdy { protocols: Vec<String> },
    /// No (known) upgrade.
    None,
}

fn header_tokens(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Reads the upgrade a request asks for.
pub fn upgrade_request(headers: &HeaderMap) -> UpgradeRequest {
    let connection_upgrade = header_tokens(headers, CONNECTION).iter().any(|t| t.eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return UpgradeRequest::None;
    }
    let upgrade = headers.get(UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_string();
    if upgrade.eq_ignore_ascii_case("websocket") {
        let key = headers.get(SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_string();
        return UpgradeRequest::WebSocket { key, protocols: header_tokens(headers, SEC_WEBSOCKET_PROTOCOL) };
    }
    if upgrade.to_ascii_lowercase().starts_with("spdy/3.1") {
        return UpgradeRequest::Spdy { protocols: header_tokens(headers, STREAM_PROTOCOL_HEADER) };
    }
    UpgradeRequest::None
}

/// The first protocol the client offers that the server supports.
pub fn choose(offered: &[String], supported: &[&str]) -> Option<String> {
    offered.iter().find(|p| supported.contains(&p.as_str())).cloned()
}

/// The 101 answer to a WebSocket handshake that chose `protocol`.
pub fn websocket_accept<B: Default>(key: &str, protocol: &str) -> Response<B> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = Response::new(B::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Ok(v) = HeaderValue::from_str(protocol) {
        h.insert(SEC_WEBSOCKET_PROTOCOL, v);
    }
    resp
}

/// The 101 answer to a SPDY upgrade that chose `protocol`.
pub fn spdy_accept<B: Default>(protocol: &str) -> Response<B> {
    let mut resp = Response::new(B::default());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    if let Ok(v) = HeaderValue::from_str(protocol) {
        h.insert(STREAM_PROTOCOL_HEADER, v);
    }
    resp
}

/// The message of a failed negotiation, worded as the kubelet's.
pub fn negotiation_error(offered: &[String], supported: &[&str]) -> String {
    if offered.is_empty() {
        return format!("unable to upgrade: {} is required", "X-Stream-Protocol-Version");
    }
    format!(
        "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]",
        offered.join(" "),
        supported.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn reads_websocket_and_spdy_upgrades() {
        let ws = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-protocol", "v5.channel.k8s.io, v4.channel.k8s.io"),
        ]);
        assert_eq!(
            upgrade_request(&ws),
            UpgradeRequest::WebSocket {
                key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
                protocols: vec!["v5.channel.k8s.io".into(), "v4.channel.k8s.io".into()]
            }
        );
        let spdy = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            ("x-stream-protocol-version", "v3.channel.k8s.io"),
        ]);
        assert_eq!(
            upgrade_request(&spdy),
            UpgradeRequest::Spdy { protocols: vec!["v4.channel.k8s.io".into(), "v3.channel.k8s.io".into()] }
        );
        assert_eq!(upgrade_request(&headers(&[("upgrade", "websocket")])), UpgradeRequest::None);
    }

    #[test]
    fn chooses_the_clients_first_supported_protocol() {
        let offered = vec!["v9".to_string(), "v4.channel.k8s.io".to_string(), "v5.channel.k8s.io".to_string()];
        assert_eq!(choose(&offered, &["v5.channel.k8s.io", "v4.channel.k8s.io"]).as_deref(), Some("v4.channel.k8s.io"));
        assert_eq!(choose(&offered, &["x"]), None);
    }

    #[test]
    fn websocket_accept_key_is_rfc6455s() {
        let resp: Response<()> = websocket_accept("dGhlIHNhbXBsZSBub25jZQ==", "v5.channel.k8s.io");
        assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(resp.headers()[SEC_WEBSOCKET_ACCEPT], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(resp.headers()[SEC_WEBSOCKET_PROTOCOL], "v5.channel.k8s.io");
    }
}
