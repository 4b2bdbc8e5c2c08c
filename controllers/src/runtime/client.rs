//! Builds the kube client every controller shares, with a layer that counts each API write in [`Metrics`]
//! by verb and resource (the benchmark reads these counts; no write can bypass them).

use kube::client::ClientBuilder;
use kube::Client;
use tower::util::MapRequestLayer;

use super::metrics::{classify_write, Metrics};

/// A client for `config` whose writes are counted in `metrics`.
pub fn build(config: kube::Config, metrics: Metrics) -> Result<Client, kube::Error> {
    let count = MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        if let Some((verb, resource)) = classify_write(req.method(), req.uri().path()) {
            metrics.observe_write(verb, &resource);
        }
        req
    });
    Ok(ClientBuilder::try_from(config)?.with_layer(&count).build())
}
