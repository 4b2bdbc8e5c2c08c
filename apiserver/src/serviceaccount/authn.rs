//! Bearer authentication of service-account tokens, as kube-apiserver's service-account authenticator: the
//! token must verify ([`super::token::verify`]), and the objects it names must still be there with the same
//! UIDs — the ServiceAccount, and the Pod, Secret or Node it is bound to (a pod deleted more than a minute ago
//! no longer counts). The user is `system:serviceaccount:NS:NAME` in `system:serviceaccounts`,
//! `system:serviceaccounts:NS` and `system:authenticated`.

use std::sync::Arc;

use serde_json::Value;

use super::keys::Keys;
use super::token::{self, Claims, ObjectRef};
use crate::auth::UserInfo;
use crate::registry::Registry;
use crate::resources;

/// How long after its deletion started a pod still backs its tokens.
const DELETED_POD_GRACE_SECONDS: i64 = 60;

/// Authenticates service-account tokens.
pub struct ServiceAccountAuthenticator {
    pub keys: Keys,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub registry: Arc<Registry>,
}

/// Whether a string looks like a JWT (three base64url parts), so other tokens are not tried as one.
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
}

/// The user a verified token stands for.
pub fn user_of(claims: &Claims) -> UserInfo {
    let ns = &claims.kubernetes.namespace;
    UserInfo {
        username: claims.sub.clone(),
        uid: claims.kubernetes.serviceaccount.uid.clone(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            crate::pki::tokens::AUTHENTICATED_GROUP.into(),
        ],
    }
}

impl ServiceAccountAuthenticator {
    /// The user of `token`, or `None` (401).
    pub async fn authenticate(&self, token: &str) -> Option<UserInfo> {
        if !looks_like_jwt(token) {
            return None;
        }
        let now = jiff::Timestamp::now().as_second();
        let claims = match token::verify(&self.keys, token, &self.issuer, &self.audiences, now) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "service account token refused");
                return None;
            }
        };
        let ns = claims.kubernetes.namespace.clone();
        if !self.exists("serviceaccounts", Some(&ns), &claims.kubernetes.serviceaccount, now).await {
            tracing::debug!(namespace = %ns, "service account of the token is gone");
            return None;
        }
        let bound = [
            ("pods", Some(ns.as_str()), claims.kubernetes.pod.as_ref()),
            ("secrets", Some(ns.as_str()), claims.kubernetes.secret.as_ref()),
        ];
        for (plural, ns, r) in bound {
            if let Some(r) = r {
                if !self.exists(plural, ns, r, now).await {
                    tracing::debug!(plural, name = %r.name, "object the token is bound to is gone");
                    return None;
                }
            }
        }
        // A pod-bound token names the pod's node too; only a node-bound token depends on it.
        if claims.kubernetes.pod.is_none() && claims.kubernetes.secret.is_none() {
            if let Some(node) = &claims.kubernetes.node {
                if !self.exists("nodes", None, node, now).await {
                    return None;
                }
            }
        }
        Some(user_of(&claims))
    }

    async fn exists(&self, plural: &str, ns: Option<&str>, r: &ObjectRef, now: i64) -> bool {
        let Some(res) = resources::find("", "v1", plural) else { return false };
        let Ok(obj) = self.registry.get(res, ns, &r.name).await else { return false };
        if obj.pointer("/metadata/uid").and_then(Value::as_str) != Some(r.uid.as_str()) {
            return false;
        }
        if plural == "pods" {
            let deleting = obj
                .pointer("/metadata/deletionTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| t.parse::<jiff::Timestamp>().ok());
            if let Some(t) = deleting {
                // The deletion timestamp is when the grace period ends; it was set that long before.
                let grace = obj.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0);
                if t.as_second() - grace + DELETED_POD_GRACE_SECONDS < now {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_jwt_shape() {
        let c = super::super::token::tests::claims(0, 600);
        let u = user_of(&c);
        assert_eq!(u.username, "system:serviceaccount:default:default");
        assert_eq!(u.groups, ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]);
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("0123456789abcdef"));
        assert!(!looks_like_jwt("a..c"));
    }
}
