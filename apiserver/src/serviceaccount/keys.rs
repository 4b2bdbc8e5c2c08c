//! The service-account signing key: `--service-account-signing-key-file` (PKCS#8 ECDSA P-256, default
//! `<data-dir>/sa.key`, made on first start with its public key `sa.pub`), and the public keys that verify
//! tokens (`--service-account-key-file`, default `sa.pub`).

use std::path::Path;

use jsonwebtoken::{DecodingKey, EncodingKey};
use rcgen::KeyPair;

use crate::pki::{files, PkiError};

pub const SIGNING_KEY_FILE: &str = "sa.key";
pub const PUBLIC_KEY_FILE: &str = "sa.pub";

/// Why the keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("service-account key {path}: {detail}")]
    Key { path: String, detail: String },
}

/// A signing key and the keys tokens are verified with.
#[derive(Clone)]
pub struct Keys {
    pub signing: EncodingKey,
    pub verifying: Vec<DecodingKey>,
}

/// Loads (or first makes, in `data_dir`) the signing key and its public key.
pub fn load_or_create(data_dir: &Path) -> Result<(String, String), KeyError> {
    let key_path = data_dir.join(SIGNING_KEY_FILE);
    let pub_path = data_dir.join(PUBLIC_KEY_FILE);
    if let (Some(key), Some(public)) = (files::read_optional(&key_path)?, files::read_optional(&pub_path)?) {
        return Ok((key, public));
    }
    let key = match files::read_optional(&key_path)? {
        Some(pem) => KeyPair::from_pem(&pem)
            .map_err(|e| KeyError::Key { path: key_path.display().to_string(), detail: e.to_string() })?,
        None => KeyPair::generate()
            .map_err(|e| KeyError::Key { path: key_path.display().to_string(), detail: e.to_string() })?,
    };
    files::write_atomic(&key_path, key.serialize_pem().as_bytes(), files::SECRET_MODE)?;
    files::write_atomic(&pub_path, key.public_key_pem().as_bytes(), files::PUBLIC_MODE)?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

/// The keys from PEM: a private signing key and public verifying keys.
pub fn from_pem(signing: &str, verifying: &[String]) -> Result<Keys, KeyError> {
    let bad =
        |what: &str, e: jsonwebtoken::errors::Error| KeyError::Key { path: what.to_string(), detail: e.to_string() };
    let signing = EncodingKey::from_ec_pem(signing.as_bytes()).map_err(|e| bad("signing key", e))?;
    let verifying = verifying
        .iter()
        .map(|p| DecodingKey::from_ec_pem(p.as_bytes()).map_err(|e| bad("public key", e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Keys { signing, verifying })
}
