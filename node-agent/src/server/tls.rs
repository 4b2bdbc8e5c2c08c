//! TLS of the kubelet API: the serving certificate (given with `--tls-cert-file`/`--tls-private-key-file`, or
//! made on first start in `<root-dir>/pki/` as the kubelet does without them: a self-signed CA `kubelet-ca.crt`
//! and a `kubelet.crt` it signs, re-issued when it no longer covers the node's names or expires within 30 days)
//! and client authentication: only certificates that chain to the client CA are let in.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use super::config::ServerFlags;

pub const PKI_DIR: &str = "pki";
pub const CERT_FILE: &str = "kubelet.crt";
pub const KEY_FILE: &str = "kubelet.key";
pub const CA_FILE: &str = "kubelet-ca.crt";
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{action} {}: {source}", .path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{action}: {source}")]
    Certificate { action: &'static str, source: rcgen::Error },
    #[error("reading PEM from {}: {detail}", .path.display())]
    Pem { path: PathBuf, detail: String },
    #[error("{action}: {source}")]
    Rustls { action: &'static str, source: rustls::Error },
    #[error("no client CA: the kubelet API would let nobody in (give --client-ca-file or a kubeconfig with a CA)")]
    NoClientCa,
    #[error("building the client certificate verifier: {0}")]
    Verifier(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The names the generated serving certificate carries: the host name, `localhost`, loopback, the listen
/// address and the host's addresses.
pub fn serving_names(flags: &ServerFlags) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(h) = nix::unistd::gethostname() {
        if let Some(h) = h.to_str() {
            names.push(h.to_ascii_lowercase());
        }
    }
    if !flags.address.is_unspecified() {
        names.push(flags.address.to_string());
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            let ip: Option<IpAddr> = a.address.as_ref().and_then(|s| {
                s.as_sockaddr_in()
                    .map(|v4| IpAddr::V4(v4.ip()))
                    .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
            });
            if let Some(ip) = ip {
                let link_local = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
                if !link_local {
                    names.push(ip.to_string());
                }
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

fn now_plus(d: Duration) -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + d
}

fn set_validity(p: &mut CertificateParams) {
    let now = rcgen::date_time_ymd(1970, 1, 1) + now_plus(Duration::ZERO);
    p.not_before = now - Duration::from_secs(24 * 3600);
    p.not_after = now + VALIDITY;
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let io = |action, e| TlsError::Io { action, path: path.to_path_buf(), source: e };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| io("creating", e))?;
    f.write_all(contents.as_bytes()).map_err(|e| io("writing", e))?;
    f.sync_all().map_err(|e| io("syncing", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("renaming onto", e))
}

fn read_optional(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TlsError::Io { action: "reading", path: path.to_path_buf(), source: e }),
    }
}

fn certs(pem: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| TlsError::Pem { path: path.to_path_buf(), detail: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.to_path_buf(), detail: "no certificate".into() });
    }
    Ok(certs)
}

/// Whether the generated certificate (chain in `cert_pem`) still verifies against `ca_pem` for every name a
/// month from now.
fn usable(ca_pem: &str, cert_pem: &str, key_pem: &str, names: &[String]) -> bool {
    let (Ok(ca), Ok(key)) =
        (CertificateDer::from_pem_slice(ca_pem.as_bytes()), PrivateKeyDer::from_pem_slice(key_pem.as_bytes()))
    else {
        return false;
    };
    let Ok(chain) = certs(cert_pem, Path::new(CERT_FILE)) else { return false };
    if rustls::sign::CertifiedKey::from_der(chain.clone(), key, &provider()).is_err() {
        return false;
    }
    let mut roots = RootCertStore::empty();
    if roots.add(ca).is_err() {
        return false;
    }
    let Ok(verifier) = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider()).build()
    else {
        return false;
    };
    let at = UnixTime::since_unix_epoch(now_plus(RENEW_BEFORE));
    names.iter().all(|n| {
        let Ok(name) = ServerName::try_from(n.clone()) else { return true };
        verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], at).is_ok()
    })
}

/// Loads the generated serving certificate from `<root_dir>/pki`, issuing what is missing or stale. Returns
/// (certificate chain PEM, key PEM).
pub fn load_or_create_serving(root_dir: &Path, names: &[String]) -> Result<(String, String), TlsError> {
    let dir = root_dir.join(PKI_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| TlsError::Io { action: "creating", path: dir.clone(), source: e })?;
    let (cert_path, key_path, ca_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE), dir.join(CA_FILE));
    if let (Some(cert), Some(key), Some(ca)) =
        (read_optional(&cert_path)?, read_optional(&key_path)?, read_optional(&ca_path)?)
    {
        if usable(&ca, &cert, &key, names) {
            return Ok((cert, key));
        }
    }
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "node".into());
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let cert_err = |action| move |e| TlsError::Certificate { action, source: e };
    let ca_key = KeyPair::generate().map_err(cert_err("generating the kubelet CA key"))?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{host}-ca@{stamp}"));
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut ca);
    let ca_cert = ca.clone().self_signed(&ca_key).map_err(cert_err("self-signing the kubelet CA"))?;

    let key = KeyPair::generate().map_err(cert_err("generating the kubelet serving key"))?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{host}@{stamp}"));
    p.distinguished_name = dn;
    p.subject_alt_names = names
        .iter()
        .filter_map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => n.as_str().try_into().ok().map(SanType::DnsName),
        })
        .collect();
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut p);
    let issuer = Issuer::new(ca, &ca_key);
    let cert = p.signed_by(&key, &issuer).map_err(cert_err("signing the kubelet serving certificate"))?;
    let chain = format!("{}{}", cert.pem(), ca_cert.pem());
    write_file(&key_path, &key.serialize_pem(), 0o600)?;
    write_file(&ca_path, &ca_cert.pem(), 0o644)?;
    write_file(&cert_path, &chain, 0o644)?;
    Ok((chain, key.serialize_pem()))
}

/// The rustls server configuration of the kubelet API: the serving certificate, HTTP/1.1 (upgrades need it) and
/// client certificates required and verified against the client CA (`--client-ca-file`, else `client_ca`).
pub fn server_config(
    flags: &ServerFlags,
    root_dir: &Path,
    client_ca: &[Vec<u8>],
) -> Result<rustls::ServerConfig, TlsError> {
    let (cert_pem, key_pem, cert_path, key_path) = match (&flags.tls_cert_file, &flags.tls_private_key_file) {
        (Some(c), Some(k)) => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).map_err(|e| TlsError::Io { action: "reading", path: p.clone(), source: e })
            };
            (read(c)?, read(k)?, c.clone(), k.clone())
        }
        _ => {
            let (c, k) = load_or_create_serving(root_dir, &serving_names(flags))?;
            let dir = root_dir.join(PKI_DIR);
            (c, k, dir.join(CERT_FILE), dir.join(KEY_FILE))
        }
    };
    let chain = certs(&cert_pem, &cert_path)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| TlsError::Pem { path: key_path.clone(), detail: e.to_string() })?;

    let mut roots = RootCertStore::empty();
    match &flags.client_ca_file {
        Some(path) => {
            let pem = std::fs::read_to_string(path).map_err(|e| TlsError::Io {
                action: "reading",
                path: path.clone(),
                source: e,
            })?;
            for c in certs(&pem, path)? {
                roots.add(c).map_err(|e| TlsError::Rustls { action: "adding the client CA", source: e })?;
            }
        }
        None => {
            for der in client_ca {
                roots
                    .add(CertificateDer::from(der.clone()))
                    .map_err(|e| TlsError::Rustls { action: "adding the client CA", source: e })?;
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoClientCa);
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls { action: "choosing TLS versions", source: e })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls { action: "loading the serving certificate", source: e })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_is_kept_until_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let (c1, k1) = load_or_create_serving(dir.path(), &names).unwrap();
        let (c2, k2) = load_or_create_serving(dir.path(), &names).unwrap();
        assert_eq!((&c1, &k1), (&c2, &k2));
        let ca = std::fs::read_to_string(dir.path().join(PKI_DIR).join(CA_FILE)).unwrap();
        assert!(usable(&ca, &c1, &k1, &names));
        let more = vec!["localhost".to_string(), "10.1.2.3".to_string()];
        let (c3, _) = load_or_create_serving(dir.path(), &more).unwrap();
        assert_ne!(c1, c3);
        let ca = std::fs::read_to_string(dir.path().join(PKI_DIR).join(CA_FILE)).unwrap();
        assert!(usable(&ca, &c3, &std::fs::read_to_string(dir.path().join(PKI_DIR).join(KEY_FILE)).unwrap(), &more));
    }
}
