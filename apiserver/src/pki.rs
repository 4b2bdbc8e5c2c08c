//! Certificates, tokens and kubeconfigs: the API server's cluster CA and serving certificate (this module),
//! the static token file ([`tokens`]) and kubeconfig files ([`kubeconfig`]).
//!
//! Files in the data directory, as kubeadm lays them out: `ca.crt`/`ca.key` (the cluster CA, made once and
//! kept forever, since every kubeconfig trusts it), `apiserver.crt`/`apiserver.key` (the serving certificate,
//! re-issued when it does not cover the wanted subject alternative names, was not signed by the CA, or expires
//! within 30 days) and `tokens.csv`. Keys are ECDSA P-256; private keys are written with mode 0600.

pub mod files;
pub mod kubeconfig;
pub mod tokens;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::RootCertStore;

pub use kubeconfig::write_kubeconfig;
pub use tokens::{add_user, TokenAuthenticator};

/// File names inside the data directory.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
pub const SERVING_CERT_FILE: &str = "apiserver.crt";
pub const SERVING_KEY_FILE: &str = "apiserver.key";
/// The client certificate the API server shows kubelets (kubeadm's names).
pub const KUBELET_CLIENT_CERT_FILE: &str = "apiserver-kubelet-client.crt";
pub const KUBELET_CLIENT_KEY_FILE: &str = "apiserver-kubelet-client.key";
/// Subject of the kubelet client certificate, as kubeadm makes it.
pub const KUBELET_CLIENT_COMMON_NAME: &str = "kube-apiserver-kubelet-client";
pub const KUBELET_CLIENT_ORGANIZATION: &str = "system:masters";

/// Common name of the cluster CA; the serving certificate's issuer name is rebuilt from it on every start.
const CA_COMMON_NAME: &str = "knet-ca";
const SERVING_COMMON_NAME: &str = "kube-apiserver";
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
const SERVING_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A serving certificate that expires within this margin is re-issued on start.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// An error while making, loading or writing certificates, tokens or kubeconfigs.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{action}: {source}")]
    Certificate {
        action: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("{action}: {source}")]
    Tls {
        action: String,
        #[source]
        source: rustls::Error,
    },
    #[error("invalid subject alternative name {0:?}: not an IP address or a DNS name")]
    InvalidSan(String),
    #[error("{} exists but {} does not: restore it or remove both to make a new CA (every kubeconfig will then need the new CA)", .present.display(), .missing.display())]
    IncompleteCa { present: PathBuf, missing: PathBuf },
    #[error("reading PEM from {}: {detail}", .path.display())]
    Pem { path: PathBuf, detail: String },
    #[error("the CA in {} was not made by knet (its subject is not CN={CA_COMMON_NAME}); knet cannot sign with it", .0.display())]
    ForeignCa(PathBuf),
    #[error("token file {}, line {line}: {detail}", .path.display())]
    TokenFile { path: PathBuf, line: usize, detail: String },
    #[error("adding user {user:?} to the token file: {detail}")]
    InvalidUser { user: String, detail: String },
    #[error("encoding kubeconfig: {0}")]
    Kubeconfig(#[from] serde_yaml::Error),
}

impl PkiError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        PkiError::Io { action, path: path.to_path_buf(), source }
    }

    fn cert(action: impl Into<String>, source: rcgen::Error) -> Self {
        PkiError::Certificate { action: action.into(), source }
    }

    fn tls(action: impl Into<String>, source: rustls::Error) -> Self {
        PkiError::Tls { action: action.into(), source }
    }
}

/// The API server's certificates, loaded from (or first made in) the data directory.
#[derive(Clone)]
pub struct Pki {
    /// The cluster CA certificate: what kubeconfigs and pods trust.
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// Where the CA certificate lives (`<data-dir>/ca.crt`).
    pub ca_cert_path: PathBuf,
    /// Whether this start issued a new serving certificate (first start, changed names, expiry).
    pub serving_cert_issued: bool,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("ca_cert_path", &self.ca_cert_path)
            .field("serving_cert_issued", &self.serving_cert_issued)
            .finish_non_exhaustive()
    }
}

/// One wanted subject alternative name of the serving certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Ip(IpAddr),
    Dns(String),
}

/// Parses the wanted names: IPs and DNS names, deduplicated; empty strings and unspecified addresses
/// (`0.0.0.0`, `::`, a bind-everywhere address no client dials) are skipped.
fn parse_names(sans: &[String]) -> Result<Vec<Name>, PkiError> {
    let mut names = Vec::new();
    for san in sans {
        let san = san.trim();
        if san.is_empty() {
            continue;
        }
        let name = match san.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => continue,
            Ok(ip) => Name::Ip(ip),
            Err(_) => {
                let dns = san.to_ascii_lowercase();
                if ServerName::try_from(dns.as_str()).is_err() {
                    return Err(PkiError::InvalidSan(san.to_string()));
                }
                Name::Dns(dns)
            }
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The names kube-apiserver's serving certificate carries: the bind address, loopback, the in-cluster
/// names of the `kubernetes` Service under `cluster_domain` and its ClusterIP. Pass the result, plus any
/// extra names (a node IP, a public name), to [`load_or_create`].
pub fn apiserver_sans(bind_address: &str, kubernetes_service_ip: &str, cluster_domain: &str) -> Vec<String> {
    vec![
        bind_address.to_string(),
        "127.0.0.1".into(),
        "localhost".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{cluster_domain}"),
        kubernetes_service_ip.to_string(),
    ]
}

/// Loads the CA and serving certificate from `data_dir`, making whatever is missing. The CA is made only when
/// neither `ca.crt` nor `ca.key` exists; the serving certificate is re-issued when it does not verify against
/// the CA for every name in `sans` 30 days from now, or its key does not match.
///
/// With no names (e.g. a command that only needs the CA to write a kubeconfig) the serving certificate is
/// neither checked nor issued: it is returned as found, empty strings if there is none.
pub fn load_or_create(data_dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
    let names = parse_names(sans)?;
    std::fs::create_dir_all(data_dir).map_err(|e| PkiError::io("creating data directory", data_dir, e))?;
    let (ca_cert_pem, ca_key) = load_or_create_ca(data_dir)?;
    let ca_cert_path = data_dir.join(CA_CERT_FILE);
    let ca_der = pem_cert(&ca_cert_pem, &ca_cert_path)?;

    let cert_path = data_dir.join(SERVING_CERT_FILE);
    let key_path = data_dir.join(SERVING_KEY_FILE);
    let existing = match (files::read_optional(&cert_path)?, files::read_optional(&key_path)?) {
        (Some(cert), Some(key)) => Some((cert, key)),
        _ => None,
    };
    if names.is_empty() {
        let (serving_cert_pem, serving_key_pem) = existing.unwrap_or_default();
        return Ok(Pki { ca_cert_pem, serving_cert_pem, serving_key_pem, ca_cert_path, serving_cert_issued: false });
    }
    if let Some((cert, key)) = existing {
        if serving_cert_usable(&ca_der, &cert, &key, &names, RENEW_BEFORE) {
            return Ok(Pki {
                ca_cert_pem,
                serving_cert_pem: cert,
                serving_key_pem: key,
                ca_cert_path,
                serving_cert_issued: false,
            });
        }
    }

    let (cert, key) = issue_serving_cert(&ca_key, &names)?;
    // A CA not made by knet has another subject, so the chain would not verify: say so instead of serving it.
    if !serving_cert_usable(&ca_der, &cert, &key, &names, Duration::ZERO) {
        return Err(PkiError::ForeignCa(ca_cert_path));
    }
    files::write_atomic(&key_path, key.as_bytes(), files::SECRET_MODE)?;
    files::write_atomic(&cert_path, cert.as_bytes(), files::PUBLIC_MODE)?;
    Ok(Pki { ca_cert_pem, serving_cert_pem: cert, serving_key_pem: key, ca_cert_path, serving_cert_issued: true })
}

/// Loads `ca.crt` + `ca.key`, or makes and writes both when neither exists.
fn load_or_create_ca(data_dir: &Path) -> Result<(String, KeyPair), PkiError> {
    let cert_path = data_dir.join(CA_CERT_FILE);
    let key_path = data_dir.join(CA_KEY_FILE);
    match (files::read_optional(&cert_path)?, files::read_optional(&key_path)?) {
        (Some(cert), Some(key)) => {
            let key =
                KeyPair::from_pem(&key).map_err(|e| PkiError::cert(format!("loading {}", key_path.display()), e))?;
            Ok((cert, key))
        }
        (None, None) => {
            let key = KeyPair::generate().map_err(|e| PkiError::cert("generating the CA key", e))?;
            let cert =
                ca_params().self_signed(&key).map_err(|e| PkiError::cert("self-signing the CA certificate", e))?.pem();
            files::write_atomic(&key_path, key.serialize_pem().as_bytes(), files::SECRET_MODE)?;
            files::write_atomic(&cert_path, cert.as_bytes(), files::PUBLIC_MODE)?;
            Ok((cert, key))
        }
        (Some(_), None) => Err(PkiError::IncompleteCa { present: cert_path, missing: key_path }),
        (None, Some(_)) => Err(PkiError::IncompleteCa { present: key_path, missing: cert_path }),
    }
}

/// The CA's certificate parameters. The issuer of every serving certificate is rebuilt from these (the name
/// and key identifier method must be the CA's own for the chain to verify), so they must never change.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut params, CA_VALIDITY);
    params
}

/// Makes `params` valid from a day ago (clock skew between hosts) until `validity` from now.
fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch(Duration::ZERO);
    params.not_before = now - DAY;
    params.not_after = now + validity;
}

/// The time `ahead` from now, as a duration since the Unix epoch.
fn since_epoch(ahead: Duration) -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + ahead
}

/// Issues a new serving key and certificate for `names`, signed by the CA key.
fn issue_serving_cert(ca_key: &KeyPair, names: &[Name]) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate().map_err(|e| PkiError::cert("generating the serving key", e))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, SERVING_COMMON_NAME);
    params.distinguished_name = dn;
    params.subject_alt_names = names
        .iter()
        .map(|n| match n {
            Name::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            Name::Dns(d) => d
                .as_str()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|e| PkiError::cert(format!("encoding the DNS name {d:?}"), e)),
        })
        .collect::<Result<_, _>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVING_VALIDITY);
    let issuer = Issuer::new(ca_params(), ca_key);
    let cert = params.signed_by(&key, &issuer).map_err(|e| PkiError::cert("signing the serving certificate", e))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Loads the client certificate `cert_file`/`key_file` from `data_dir`, or issues one signed by the cluster CA
/// (subject CN=`common_name`, O=`organization`, client-auth usage) when either is missing or they do not match.
/// Returns (certificate PEM, key PEM).
pub fn load_or_create_client_cert(
    data_dir: &Path,
    cert_file: &str,
    key_file: &str,
    common_name: &str,
    organization: &str,
) -> Result<(String, String), PkiError> {
    std::fs::create_dir_all(data_dir).map_err(|e| PkiError::io("creating data directory", data_dir, e))?;
    let (cert_path, key_path) = (data_dir.join(cert_file), data_dir.join(key_file));
    if let (Some(cert), Some(key)) = (files::read_optional(&cert_path)?, files::read_optional(&key_path)?) {
        let matches =
            match (CertificateDer::from_pem_slice(cert.as_bytes()), PrivateKeyDer::from_pem_slice(key.as_bytes())) {
                (Ok(c), Ok(k)) => rustls::sign::CertifiedKey::from_der(vec![c], k, &provider()).is_ok(),
                _ => false,
            };
        if matches {
            return Ok((cert, key));
        }
    }
    let (_, ca_key) = load_or_create_ca(data_dir)?;
    let key = KeyPair::generate().map_err(|e| PkiError::cert("generating a client key", e))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, SERVING_VALIDITY);
    let issuer = Issuer::new(ca_params(), &ca_key);
    let cert = params.signed_by(&key, &issuer).map_err(|e| PkiError::cert("signing a client certificate", e))?;
    files::write_atomic(&key_path, key.serialize_pem().as_bytes(), files::SECRET_MODE)?;
    files::write_atomic(&cert_path, cert.pem().as_bytes(), files::PUBLIC_MODE)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Whether the serving certificate and key match each other, chain to the CA and are valid for every name
/// `margin` from now.
fn serving_cert_usable(
    ca_der: &CertificateDer<'static>,
    cert_pem: &str,
    key_pem: &str,
    names: &[Name],
    margin: Duration,
) -> bool {
    let Ok(cert) = CertificateDer::from_pem_slice(cert_pem.as_bytes()) else { return false };
    let Ok(key) = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) else { return false };
    if rustls::sign::CertifiedKey::from_der(vec![cert.clone()], key, &provider()).is_err() {
        return false;
    }
    let mut roots = RootCertStore::empty();
    if roots.add(ca_der.clone()).is_err() {
        return false;
    }
    let Ok(verifier) = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build() else {
        return false;
    };
    let at = UnixTime::since_unix_epoch(since_epoch(margin));
    names.iter().all(|name| {
        let server_name = match name {
            Name::Ip(ip) => ServerName::IpAddress((*ip).into()),
            Name::Dns(d) => match ServerName::try_from(d.clone()) {
                Ok(n) => n,
                Err(_) => return false,
            },
        };
        verifier.verify_server_cert(&cert, &[], &server_name, &[], at).is_ok()
    })
}

fn pem_cert(pem: &str, path: &Path) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| PkiError::Pem { path: path.to_path_buf(), detail: e.to_string() })
}

/// The ring crypto provider every TLS object of the API server uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server configuration serving the serving certificate, offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_tls_config(pki: &Pki) -> Result<rustls::ServerConfig, PkiError> {
    let cert = CertificateDer::from_pem_slice(pki.serving_cert_pem.as_bytes())
        .map_err(|e| PkiError::Pem { path: PathBuf::from(SERVING_CERT_FILE), detail: e.to_string() })?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes())
        .map_err(|e| PkiError::Pem { path: PathBuf::from(SERVING_KEY_FILE), detail: e.to_string() })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| PkiError::tls("choosing TLS versions", e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .map_err(|e| PkiError::tls("loading the serving certificate", e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sans(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn default_sans() -> Vec<String> {
        apiserver_sans("0.0.0.0", "10.96.0.1", "cluster.local")
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Runs a TLS handshake in memory between a client trusting `ca_pem` and a server with `config`, and
    /// returns the negotiated ALPN protocol.
    fn handshake(ca_pem: &str, config: rustls::ServerConfig, name: &str) -> Result<Option<Vec<u8>>, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
        let mut client_config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = vec![b"h2".to_vec()];
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let mut client = rustls::ClientConnection::new(Arc::new(client_config), server_name)?;
        let mut server = rustls::ServerConnection::new(Arc::new(config))?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut buf.as_slice()).unwrap();
            server.process_new_packets()?;
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut buf.as_slice()).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(client.alpn_protocol().map(<[u8]>::to_vec));
            }
        }
        panic!("handshake did not finish");
    }

    #[test]
    fn first_start_makes_ca_and_serving_cert_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let pki = load_or_create(dir.path(), &default_sans()).unwrap();
        assert!(pki.serving_cert_issued);
        assert_eq!(mode(&dir.path().join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.path().join(SERVING_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.path().join(CA_CERT_FILE)), 0o644);
        assert_eq!(std::fs::read_to_string(&pki.ca_cert_path).unwrap(), pki.ca_cert_pem);

        let config = server_tls_config(&pki).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        for name in [
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc.cluster.local",
            "10.96.0.1",
        ] {
            let alpn = handshake(&pki.ca_cert_pem, server_tls_config(&pki).unwrap(), name).unwrap();
            assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "{name}");
        }
        // A name not in the certificate is refused by a verifying client.
        assert!(handshake(&pki.ca_cert_pem, config, "example.com").is_err());
    }

    #[test]
    fn later_starts_reuse_and_reissue_only_the_serving_cert_on_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), &default_sans()).unwrap();
        let second = load_or_create(dir.path(), &default_sans()).unwrap();
        assert!(!second.serving_cert_issued);
        assert_eq!(second.serving_cert_pem, first.serving_cert_pem);
        assert_eq!(second.serving_key_pem, first.serving_key_pem);

        let mut wider = default_sans();
        wider.push("192.168.56.10".into());
        let third = load_or_create(dir.path(), &wider).unwrap();
        assert!(third.serving_cert_issued);
        assert_eq!(third.ca_cert_pem, first.ca_cert_pem);
        assert_ne!(third.serving_cert_pem, first.serving_cert_pem);
        handshake(&third.ca_cert_pem, server_tls_config(&third).unwrap(), "192.168.56.10").unwrap();
        // Names that are already covered need no new certificate.
        assert!(!load_or_create(dir.path(), &sans(&["localhost"])).unwrap().serving_cert_issued);
    }

    #[test]
    fn a_broken_serving_cert_or_key_is_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), &default_sans()).unwrap();
        std::fs::write(dir.path().join(SERVING_KEY_FILE), KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let second = load_or_create(dir.path(), &default_sans()).unwrap();
        assert!(second.serving_cert_issued);
        std::fs::write(dir.path().join(SERVING_CERT_FILE), "garbage").unwrap();
        assert!(load_or_create(dir.path(), &default_sans()).unwrap().serving_cert_issued);
        assert_eq!(second.ca_cert_pem, first.ca_cert_pem);
    }

    #[test]
    fn a_half_missing_ca_is_an_error_not_a_new_ca() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path(), &default_sans()).unwrap();
        std::fs::remove_file(dir.path().join(CA_KEY_FILE)).unwrap();
        let err = load_or_create(dir.path(), &default_sans()).unwrap_err();
        assert!(matches!(err, PkiError::IncompleteCa { .. }), "{err}");
        assert!(err.to_string().contains("ca.key does not"), "{err}");
    }

    #[test]
    fn a_foreign_ca_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join(CA_CERT_FILE), cert.pem()).unwrap();
        std::fs::write(dir.path().join(CA_KEY_FILE), key.serialize_pem()).unwrap();
        let err = load_or_create(dir.path(), &default_sans()).unwrap_err();
        assert!(matches!(err, PkiError::ForeignCa(_)), "{err}");
    }

    #[test]
    fn no_names_loads_the_ca_and_leaves_the_serving_cert_alone() {
        let dir = tempfile::tempdir().unwrap();
        let ca_only = load_or_create(dir.path(), &[]).unwrap();
        assert!(!ca_only.serving_cert_issued);
        assert!(ca_only.serving_cert_pem.is_empty());
        assert!(!dir.path().join(SERVING_CERT_FILE).exists());
        let served = load_or_create(dir.path(), &default_sans()).unwrap();
        assert_eq!(served.ca_cert_pem, ca_only.ca_cert_pem);
        let again = load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(again.serving_cert_pem, served.serving_cert_pem);
        assert!(!again.serving_cert_issued);
    }

    #[test]
    fn names_are_checked_and_normalised() {
        assert!(matches!(parse_names(&sans(&["bad name!"])), Err(PkiError::InvalidSan(_))));
        let names = parse_names(&sans(&["", "::", "0.0.0.0", "LocalHost", "localhost", "::1"])).unwrap();
        assert_eq!(names, vec![Name::Dns("localhost".into()), Name::Ip("::1".parse().unwrap())]);
    }
}
