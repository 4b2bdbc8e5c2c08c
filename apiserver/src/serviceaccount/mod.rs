//! Service accounts in the API server, as kube-apiserver has them:
//! - [`keys`]: the token signing key (`sa.key`, made on first start) and the public keys that verify tokens;
//! - [`token`]: the claims of a token, signing and verifying (ES256 JWTs);
//! - [`issuer`]: the `serviceaccounts/{name}/token` subresource (authentication.k8s.io/v1 TokenRequest);
//! - [`authn`]: bearer authentication of service-account tokens, bound tokens checked against the live objects;
//! - [`admission`]: the ServiceAccount admission plugin (default account, existence check, the projected
//!   `kube-api-access-*` volume).

pub mod admission;
pub mod authn;
pub mod issuer;
pub mod keys;
pub mod token;

pub use authn::ServiceAccountAuthenticator;
pub use issuer::TokenIssuer;

/// The default `--service-account-issuer` (and API audience).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Where tokens, the CA and the namespace are mounted in every container.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
