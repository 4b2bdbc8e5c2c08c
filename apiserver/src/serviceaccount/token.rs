//! Service-account tokens: ES256 JWTs with kube-apiserver's claims (`iss`, `sub`
//! `system:serviceaccount:NS:NAME`, `aud`, `exp`/`iat`/`nbf`, `jti`, and the private `kubernetes.io` claim naming
//! the namespace, the service account and the object the token is bound to). Signing and verifying are pure
//! (the time is a parameter); whether the named objects still exist is [`super::authn`]'s business.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::Keys;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 60;

/// A named object with its UID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    pub serviceaccount: ObjectRef,
    /// Past this time the (extended) token is used with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// All claims of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    pub nbf: i64,
    pub sub: String,
}

/// `system:serviceaccount:NS:NAME`.
pub fn subject(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Why a token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a service account token: {0}")]
    Malformed(String),
    #[error("service account token is not signed by a known key")]
    Signature,
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotYetValid,
    #[error("service account token's claims do not match: {0}")]
    Claims(String),
    #[error("signing the token: {0}")]
    Sign(String),
}

/// Signs `claims`.
pub fn sign(keys: &Keys, claims: &Claims) -> Result<String, TokenError> {
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &keys.signing)
        .map_err(|e| TokenError::Sign(e.to_string()))
}

/// Verifies a token's signature, issuer, audience and validity window at `now` (Unix seconds).
pub fn verify(keys: &Keys, token: &str, issuer: &str, audiences: &[String], now: i64) -> Result<Claims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    if header.alg != Algorithm::ES256 {
        return Err(TokenError::Signature);
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    let mut last = TokenError::Signature;
    for key in &keys.verifying {
        match jsonwebtoken::decode::<Claims>(token, key, &validation) {
            Ok(data) => {
                let c = data.claims;
                if c.iss != issuer {
                    return Err(TokenError::Claims(format!("issuer {:?} is not {issuer:?}", c.iss)));
                }
                if !c.aud.iter().any(|a| audiences.contains(a)) {
                    return Err(TokenError::Claims("token audiences are not the API server's".into()));
                }
                if c.exp + LEEWAY_SECONDS < now {
                    return Err(TokenError::Expired);
                }
                if c.nbf - LEEWAY_SECONDS > now {
                    return Err(TokenError::NotYetValid);
                }
                let sa = &c.kubernetes.serviceaccount;
                if c.sub != subject(&c.kubernetes.namespace, &sa.name) {
                    return Err(TokenError::Claims("subject does not name the service account".into()));
                }
                return Ok(c);
            }
            Err(e) => {
                last = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Signature,
                    _ => TokenError::Malformed(e.to_string()),
                }
            }
        }
    }
    Err(last)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn keys() -> Keys {
        let k = rcgen::KeyPair::generate().unwrap();
        super::super::keys::from_pem(&k.serialize_pem(), &[k.public_key_pem()]).unwrap()
    }

    pub(crate) fn claims(now: i64, ttl: i64) -> Claims {
        Claims {
            aud: vec![super::super::DEFAULT_ISSUER.into()],
            exp: now + ttl,
            iat: now,
            iss: super::super::DEFAULT_ISSUER.into(),
            jti: "j".into(),
            kubernetes: KubernetesClaims {
                namespace: "default".into(),
                node: None,
                pod: Some(ObjectRef { name: "p".into(), uid: "pu".into() }),
                secret: None,
                serviceaccount: ObjectRef { name: "default".into(), uid: "su".into() },
                warnafter: None,
            },
            nbf: now,
            sub: subject("default", "default"),
        }
    }

    #[test]
    fn signed_tokens_verify_until_they_expire() {
        let keys = keys();
        let aud = vec![super::super::DEFAULT_ISSUER.to_string()];
        let token = sign(&keys, &claims(1000, 600)).unwrap();
        let c = verify(&keys, &token, super::super::DEFAULT_ISSUER, &aud, 1100).unwrap();
        assert_eq!(c.kubernetes.pod.unwrap().uid, "pu");
        assert_eq!(c.sub, "system:serviceaccount:default:default");
        assert_eq!(
            verify(&keys, &token, super::super::DEFAULT_ISSUER, &aud, 1000 + 600 + 61),
            Err(TokenError::Expired)
        );
        assert!(matches!(verify(&keys, &token, "https://other", &aud, 1100), Err(TokenError::Claims(_))));
        assert!(matches!(
            verify(&keys, &token, super::super::DEFAULT_ISSUER, &["api".to_string()], 1100),
            Err(TokenError::Claims(_))
        ));
        // Another key's signature, and garbage.
        assert_eq!(
            verify(&super::tests::keys(), &token, super::super::DEFAULT_ISSUER, &aud, 1100),
            Err(TokenError::Signature)
        );
        assert!(matches!(
            verify(&keys, "a.b.c", super::super::DEFAULT_ISSUER, &aud, 1100),
            Err(TokenError::Malformed(_))
        ));
        let json = serde_json::to_value(claims(1, 2)).unwrap();
        assert_eq!(json["kubernetes.io"]["serviceaccount"]["name"], "default");
        assert!(json["kubernetes.io"].get("secret").is_none());
    }
}
