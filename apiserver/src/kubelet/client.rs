//! The API server's connections to kubelets: TLS with the kubelet-client certificate, the kubelet's serving
//! certificate verified against `--kubelet-certificate-authority` when given (not verified otherwise, as
//! kube-apiserver does without it), one HTTP/1.1 connection per request with upgrades enabled.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a kubelet could not be reached or the client not be made.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("loading the kubelet client credentials: {0}")]
    Credentials(String),
    #[error("dialing {addr}: {source}")]
    Dial { addr: String, source: std::io::Error },
    #[error("dialing {0}: timed out")]
    Timeout(String),
    #[error("TLS handshake with the kubelet at {addr}: {source}")]
    Tls { addr: String, source: std::io::Error },
    #[error("talking to the kubelet at {addr}: {source}")]
    Http { addr: String, source: hyper::Error },
}

/// Accepts any kubelet serving certificate (no `--kubelet-certificate-authority`), still checking handshake
/// signatures.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How to reach kubelets.
pub struct KubeletClient {
    tls: Arc<rustls::ClientConfig>,
    /// Node address types, most preferred first (`--kubelet-preferred-address-types`).
    pub preferred_address_types: Vec<String>,
}

impl KubeletClient {
    /// A client presenting `cert_pem`/`key_pem`; `ca_pem` verifies kubelets when given.
    pub fn new(
        cert_pem: &str,
        key_pem: &str,
        ca_pem: Option<&str>,
        preferred_address_types: Vec<String>,
    ) -> Result<KubeletClient, KubeletError> {
        let bad = |e: String| KubeletError::Credentials(e);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain: Result<Vec<CertificateDer<'static>>, _> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect();
        let chain = chain.map_err(|e| bad(format!("client certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| bad(format!("client key: {e}")))?;
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?;
        let builder = match ca_pem {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    let c = c.map_err(|e| bad(format!("kubelet certificate authority: {e}")))?;
                    roots.add(c).map_err(|e| bad(format!("kubelet certificate authority: {e}")))?;
                }
                builder.with_root_certificates(roots)
            }
            None => builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAny(provider))),
        };
        let mut tls = builder.with_client_auth_cert(chain, key).map_err(|e| bad(e.to_string()))?;
        // Upgrades (exec, attach, port-forward) need HTTP/1.1.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient { tls: Arc::new(tls), preferred_address_types })
    }

    /// Sends `req` to the kubelet at `host:port` on a new connection (kept alive for an upgrade).
    pub async fn send(
        &self,
        host: &str,
        port: u16,
        req: http::Request<Empty<Bytes>>,
    ) -> Result<http::Response<Incoming>, KubeletError> {
        let addr = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr))
            .await
            .map_err(|_| KubeletError::Timeout(addr.clone()))?
            .map_err(|source| KubeletError::Dial { addr: addr.clone(), source })?;
        let _ = tcp.set_nodelay(true);
        let name = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_string())
                .map_err(|e| KubeletError::Tls { addr: addr.clone(), source: std::io::Error::other(e) })?,
        };
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|source| KubeletError::Tls { addr: addr.clone(), source })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|source| KubeletError::Http { addr: addr.clone(), source })?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender.send_request(req).await.map_err(|source| KubeletError::Http { addr, source })
    }
}
