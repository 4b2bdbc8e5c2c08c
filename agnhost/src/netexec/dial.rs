//! `/dial`: makes `tries` requests to `host:port` over HTTP or UDP and answers a JSON object with the
//! successful `responses` and the `errors`, as upstream's dial handler does (including its quirk: `responses`
//! is only present when the last try succeeded with a non-empty answer).

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::handlers::{error, go_json};
use crate::log;

/// How long one try may take, as upstream.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn handler(axum::extract::Query(params): axum::extract::Query<Vec<(String, String)>>) -> Response {
    let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
    let (host, port, request, protocol, tries_param) =
        (get("host"), get("port"), get("request"), get("protocol"), get("tries"));
    log::line(format!("GET /dial?host={host}&protocol={protocol}&port={port}&request={request}&tries={tries_param}"));
    let tries: i64 = if tries_param.is_empty() {
        1
    } else {
        match tries_param.parse() {
            Ok(n) => n,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("tries parameter is invalid. strconv.Atoi: parsing {tries_param:?}: invalid syntax"),
                )
            }
        }
    };
    if request.is_empty() {
        return error(StatusCode::BAD_REQUEST, "request parameter not specified. <nil>");
    }
    let protocol = protocol.to_lowercase();
    let network = match protocol.as_str() {
        "" | "http" => "tcp",
        "udp" => "udp",
        other => return error(StatusCode::BAD_REQUEST, format!("unsupported protocol. {other}")),
    };
    let host_port = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let addr = match resolve(&host, &port).await {
        Ok(a) => a,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "host and/or port param are invalid. {}",
                    e.replace("HOSTPORT", &format!("{network}/{host_port}"))
                ),
            )
        }
    };
    let mut responses = Vec::new();
    let mut errors = Vec::new();
    let mut last = String::new();
    for _ in 0..tries.max(0) {
        let result = if network == "tcp" { dial_http(&request, addr).await } else { dial_udp(&request, addr).await };
        match result {
            Ok(answer) => {
                last = answer.clone();
                responses.push(answer);
            }
            Err(e) => {
                last.clear();
                errors.push(e);
            }
        }
    }
    let mut output = serde_json::Map::new();
    if !errors.is_empty() {
        output.insert("errors".into(), errors.into());
    }
    if !last.is_empty() {
        output.insert("responses".into(), responses.into());
    }
    let body = go_json(&serde_json::Value::Object(output));
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// Resolves `host` (an IP or a name; empty: this host) and a numeric `port`.
async fn resolve(host: &str, port: &str) -> Result<SocketAddr, String> {
    let port: u16 = port.parse().map_err(|_| format!("address HOSTPORT: invalid port {port:?}"))?;
    if host.is_empty() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let mut found = tokio::net::lookup_host((host, port)).await.map_err(|e| format!("lookup {host}: {e}"))?;
    found.next().ok_or_else(|| format!("lookup {host}: no such host"))
}

async fn dial_http(request: &str, addr: SocketAddr) -> Result<String, String> {
    let url = format!("http://{addr}/{request}");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(TRY_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| format!("Get {url:?}: {e}"))?;
    let describe = |e: reqwest::Error| {
        if e.is_timeout() {
            return format!("Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)");
        }
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                let why = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    std::io::ErrorKind::HostUnreachable => "no route to host".to_string(),
                    std::io::ErrorKind::NetworkUnreachable => "network is unreachable".to_string(),
                    _ => io.to_string(),
                };
                return format!("Get {url:?}: dial tcp {addr}: connect: {why}");
            }
            source = s.source();
        }
        format!("Get {url:?}: {e}")
    };
    let response = client.get(&url).send().await.map_err(describe)?;
    response.text().await.map_err(describe)
}

async fn dial_udp(request: &str, addr: SocketAddr) -> Result<String, String> {
    let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = tokio::net::UdpSocket::bind(local).await.map_err(|e| format!("udp dial failed. err:{e}"))?;
    socket.connect(addr).await.map_err(|e| format!("udp dial failed. err:dial udp {addr}: {e}"))?;
    let local = socket.local_addr().map(|a| a.to_string()).unwrap_or_default();
    socket
        .send(request.as_bytes())
        .await
        .map_err(|e| format!("udp connection write failed. err:write udp {local}->{addr}: {e}"))?;
    let mut buf = vec![0u8; 2048];
    let read = match tokio::time::timeout(TRY_TIMEOUT, socket.recv(&mut buf)).await {
        Err(_) => {
            return Err(format!("reading from udp connection failed. err:'read udp {local}->{addr}: i/o timeout'"))
        }
        Ok(Err(e)) => {
            let why = if e.kind() == std::io::ErrorKind::ConnectionRefused {
                "connection refused".into()
            } else {
                e.to_string()
            };
            return Err(format!("reading from udp connection failed. err:'read udp {local}->{addr}: recvfrom: {why}'"));
        }
        Ok(Ok(n)) => n,
    };
    if read == 0 {
        return Err("reading from udp connection failed. err:'<nil>'".to_string());
    }
    Ok(String::from_utf8_lossy(&buf[..read]).into_owned())
}
