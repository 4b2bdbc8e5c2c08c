//! The kubelet API: the HTTPS server the API server forwards `pods/exec`, `pods/attach`, `pods/log` and
//! `pods/portforward` to. Only clients with a certificate from the client CA are served (the API server's
//! kubelet-client certificate); the TLS handshake refuses anyone else.
//!
//! Modules: [`route`] (paths and query options), [`tls`] (serving certificate, client verification),
//! [`upgrade`] (WebSocket and SPDY handshakes), [`remotecommand`] (the exec/attach channel protocols),
//! [`exec`] + [`pty`], [`attach`], [`logs`], [`portforward`] + [`spdy`] + [`wsio`] (SPDY, tunnelled through a
//! WebSocket or not), and [`runtime`], the contract with the pod runtime.

pub mod attach;
pub mod config;
pub mod exec;
pub mod logs;
pub mod portforward;
pub mod pty;
pub mod remotecommand;
pub mod route;
pub mod runtime;
pub mod spdy;
pub mod tls;
pub mod upgrade;
pub mod wsio;

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use route::{Route, StreamOptions};
use runtime::{ContainerRef, RuntimeError, StreamingRuntime};
use upgrade::UpgradeRequest;

/// Why the kubelet API server stopped (or could not start).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("setting up the kubelet API's TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("accepting a connection: {0}")]
    Accept(std::io::Error),
}

/// The answer body of every kubelet API response.
pub type Body = BoxBody<Bytes, std::io::Error>;

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e: Infallible| match e {}).boxed()
}

#[allow(dead_code)]
fn empty() -> Body {
    full(Bytes::new())
}

fn text(code: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(msg.into()));
    *r.status_mut() = code;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn runtime_error(e: RuntimeError) -> Response<Body> {
    match e {
        RuntimeError::NotFound(m) => text(StatusCode::NOT_FOUND, m),
        RuntimeError::BadRequest(m) => text(StatusCode::BAD_REQUEST, m),
        RuntimeError::Internal(m) => text(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

/// Serves the kubelet API until the process ends. `root_dir` holds the serving certificate (generated on first
/// start); `client_ca` are the DER certificates of the CA the API server's client certificate must chain to,
/// used when `--client-ca-file` is not given.
pub async fn run(
    flags: config::ServerFlags,
    root_dir: PathBuf,
    client_ca: Vec<Vec<u8>>,
    runtime: Arc<dyn runtime::StreamingRuntime>,
) -> Result<(), ServerError> {
    let tls = tls::server_config(&flags, &root_dir, &client_ca)?;
    let addr = std::net::SocketAddr::new(flags.address, flags.port);
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServerError::Listen { addr, source })?;
    tracing::info!(%addr, "kubelet API serving");
    serve(listener, Arc::new(tls), runtime).await
}

/// Serves the kubelet API on `listener` with the TLS configuration from [`tls::server_config`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    runtime: Arc<dyn StreamingRuntime>,
) -> Result<(), ServerError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = listener.accept().await.map_err(ServerError::Accept)?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let runtime = runtime.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::info!(%peer, error = %e, "kubelet API: TLS handshake refused");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let runtime = runtime.clone();
                async move { Ok::<_, Infallible>(handle(runtime, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(%peer, error = %e, "kubelet API connection ended");
            }
        });
    }
}

async fn handle(runtime: Arc<dyn StreamingRuntime>, req: Request<Incoming>) -> Response<Body> {
    let q = route::query_pairs(req.uri().query());
    let r = route::route(req.uri().path());
    tracing::debug!(method = %req.method(), path = req.uri().path(), "kubelet API request");
    match r {
        Route::Healthz => text(StatusCode::OK, "ok"),
        Route::NotFound => text(StatusCode::NOT_FOUND, "404 page not found"),
        Route::Logs(c) if req.method() == Method::GET => logs(runtime, c, &q).await,
        Route::Exec(c) | Route::Attach(c) if req.method() != Method::GET && req.method() != Method::POST => {
            let _ = c;
            text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed")
        }
        Route::Exec(c) => exec_or_attach(runtime, req, c, &q, true).await,
        Route::Attach(c) => exec_or_attach(runtime, req, c, &q, false).await,
        Route::PortForward { namespace, pod, uid } => port_forward(runtime, req, namespace, pod, uid).await,
        Route::Logs(_) => text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed"),
    }
}

async fn logs(runtime: Arc<dyn StreamingRuntime>, c: ContainerRef, q: &[(String, String)]) -> Response<Body> {
    let opts = match logs::LogOptions::from_query(q, jiff::Timestamp::now()) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let files = match runtime.log_files(&c).await {
        Ok(f) => f,
        Err(e) => return runtime_error(e),
    };
    if opts.previous && files.previous.is_none() {
        return text(
            StatusCode::BAD_REQUEST,
            format!("previous terminated container {:?} in pod {:?} not found", c.container, c.pod),
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(logs::stream(runtime, c, files, opts, tx));
    let body = StreamBody::new(tokio_stream_rx(rx).map(|r| r.map(Frame::data)));
    let mut resp = Response::new(BodyExt::boxed(body));
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    resp
}

fn tokio_stream_rx<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn websocket<S>(io: S) -> WebSocketStream<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    WebSocketStream::from_raw_socket(io, Role::Server, Some(WebSocketConfig::default())).await
}

/// What the runtime gave for an exec or attach, before the connection is upgraded.
enum Prepared {
    Exec(runtime::ExecTarget),
    Attach(runtime::Attachment),
}

async fn exec_or_attach(
    runtime: Arc<dyn StreamingRuntime>,
    mut req: Request<Incoming>,
    c: ContainerRef,
    q: &[(String, String)],
    is_exec: bool,
) -> Response<Body> {
    let opts = match StreamOptions::from_query(q) {
        Ok(o) => o,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    // Ask the runtime first, so a client falling back from one protocol to another gets the same answer.
    let prepared = if is_exec {
        if opts.command.is_empty() {
            return text(StatusCode::BAD_REQUEST, "you must specify at least one command for the container");
        }
        match runtime.exec_target(&c).await {
            Ok(t) => Prepared::Exec(t),
            Err(e) => return runtime_error(e),
        }
    } else {
        match runtime.attach(&c).await {
            Ok(a) => Prepared::Attach(a),
            Err(e) => return runtime_error(e),
        }
    };
    let (key, offered) = match upgrade::upgrade_request(req.headers()) {
        UpgradeRequest::WebSocket { key, protocols } => (key, protocols),
        UpgradeRequest::Spdy { .. } => {
            return text(
                StatusCode::BAD_REQUEST,
                "SPDY streaming is not served for exec and attach: use a WebSocket (v5.channel.k8s.io)",
            )
        }
        UpgradeRequest::None => return text(StatusCode::BAD_REQUEST, "Upgrade request required"),
    };
    let offered = if offered.is_empty() { vec![String::new()] } else { offered };
    let Some(chosen) = upgrade::choose(&offered, remotecommand::PROTOCOLS)
        .or_else(|| offered.iter().any(String::is_empty).then(String::new))
    else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("requested protocol(s) are not supported: {offered:?}; supports {:?}", remotecommand::PROTOCOLS),
        );
    };
    let Some(protocol) = remotecommand::Protocol::from_name(&chosen) else {
        return text(StatusCode::BAD_REQUEST, "unsupported protocol");
    };
    // Everything that can fail is checked before switching protocols, so the client gets a plain error.
    let streams = match prepared {
        Prepared::Exec(target) => match exec::start(&target, &opts) {
            Ok(s) => s,
            Err(msg) => {
                // The command could not start: tell the client through the error channel, as the kubelet does.
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = tx.send(remotecommand::Outcome::Error(msg));
                let (_, out_rx) = tokio::sync::mpsc::channel(1);
                remotecommand::Streams { stdin: None, resize: None, output: out_rx, outcome: rx }
            }
        },
        Prepared::Attach(a) => attach::streams(a, &opts),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let first = if opts.stdout {
        remotecommand::STDOUT
    } else if opts.stderr {
        remotecommand::STDERR
    } else {
        remotecommand::ERROR
    };
    let command = opts.command.clone();
    let (ns, pod, container) = (c.namespace.clone(), c.pod.clone(), c.container.clone());
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::info!(namespace = %ns, pod = %pod, error = %e, "exec/attach upgrade failed");
                return;
            }
        };
        let ws = websocket(TokioIo::new(upgraded)).await;
        let ended = remotecommand::drive(ws, protocol, &command, first, streams).await;
        tracing::info!(namespace = %ns, pod = %pod, container = %container, exec = is_exec, ?ended, "stream session ended");
    });
    upgrade::websocket_accept(&key, &chosen)
}

async fn port_forward(
    runtime: Arc<dyn StreamingRuntime>,
    mut req: Request<Incoming>,
    namespace: String,
    pod: String,
    uid: Option<String>,
) -> Response<Body> {
    let upgrade = upgrade::upgrade_request(req.headers());
    if matches!(upgrade, UpgradeRequest::None) {
        return text(StatusCode::BAD_REQUEST, "Upgrade request required");
    }
    let netns = match runtime.pod_netns(&namespace, &pod, uid.as_deref()).await {
        Ok(p) => p,
        Err(e) => return runtime_error(e),
    };
    let target = portforward::Target { pod: pod.clone(), uid: uid.unwrap_or_default(), netns };
    let on_upgrade = hyper::upgrade::on(&mut req);
    match upgrade {
        UpgradeRequest::WebSocket { key, protocols } => {
            let Some(chosen) = upgrade::choose(&protocols, &[portforward::TUNNEL_PROTOCOL]) else {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "requested protocol(s) are not supported: {protocols:?}; supports [{}]",
                        portforward::TUNNEL_PROTOCOL
                    ),
                );
            };
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    let ws = websocket(TokioIo::new(upgraded)).await;
                    portforward::serve(wsio::byte_stream(ws), target).await;
                }
            });
            upgrade::websocket_accept(&key, &chosen)
        }
        UpgradeRequest::Spdy { protocols } => {
            let Some(chosen) = upgrade::choose(&protocols, &[portforward::PROTOCOL]) else {
                let mut r =
                    text(StatusCode::FORBIDDEN, upgrade::negotiation_error(&protocols, &[portforward::PROTOCOL]));
                r.headers_mut()
                    .insert(upgrade::ACCEPTED_PROTOCOLS_HEADER, http::HeaderValue::from_static(portforward::PROTOCOL));
                return r;
            };
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    portforward::serve(TokioIo::new(upgraded), target).await;
                }
            });
            upgrade::spdy_accept(&chosen)
        }
        UpgradeRequest::None => text(StatusCode::BAD_REQUEST, "Upgrade request required"),
    }
}
