//! The plain-HTTP health and metrics server every long-running component exposes: `/healthz` and `/livez`
//! answer `ok` while the process serves, `/readyz` answers 200 once the component says it is ready (503 with
//! the reason before), `/metrics` is the Prometheus text exposition the component renders.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use tokio::sync::watch;

/// Why the health server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("binding the health and metrics server to {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Renders the Prometheus text exposition (with its content type) on each scrape.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// Binds `addr` and serves in a background task. `ready` carries `Ok(())` when ready, `Err(reason)` before.
/// Returns the bound address (useful when `addr` asks for port 0).
pub async fn serve(
    addr: SocketAddr,
    metrics: MetricsRenderer,
    ready: watch::Receiver<Result<(), String>>,
) -> Result<SocketAddr, HealthError> {
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = metrics();
                std::future::ready(([(http::header::CONTENT_TYPE, CONTENT_TYPE)], body))
            }),
        )
        .route("/healthz", get(|| std::future::ready("ok")))
        .route("/livez", get(|| std::future::ready("ok")))
        .route(
            "/readyz",
            get(move || {
                let answer = match &*ready.borrow() {
                    Ok(()) => (http::StatusCode::OK, "ok".to_string()),
                    Err(reason) => (http::StatusCode::SERVICE_UNAVAILABLE, reason.clone()),
                };
                std::future::ready(answer)
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| HealthError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(|source| HealthError::Bind { addr, source })?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health and metrics server failed");
        }
    });
    Ok(bound)
}

/// The Prometheus text exposition format's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
