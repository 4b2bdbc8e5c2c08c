//! `POST serviceaccounts/{name}/token`: an authentication.k8s.io/v1 TokenRequest answered with a signed token,
//! as kube-apiserver's TokenREST: audiences default to the API audiences, `expirationSeconds` to 3600 (at least
//! 600), a bound object must be a Pod (or Secret or Node) that exists, with the UID given, and a pod must run as
//! the service account. A pod-bound token asked for 3607 s (the kubelet's projected tokens) is extended to a
//! year with `warnafter` at the asked time, as kube-apiserver's `--service-account-extend-token-expiration`.

use knet_apimachinery::field::{FieldError, Path};
use serde_json::{json, Value};

use super::keys::Keys;
use super::token::{self, Claims, KubernetesClaims, ObjectRef};
use crate::error::ApiError;
use crate::registry::Registry;
use crate::resources::{self, ResourceInfo};

pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// What the kubelet asks for its projected tokens; such pod-bound tokens are extended.
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 3607;
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 3600;

/// Signs service-account tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    pub keys: Keys,
    /// `--service-account-issuer`.
    pub issuer: String,
    /// `--api-audiences`: the default audiences of a token.
    pub audiences: Vec<String>,
}

fn uid_of(v: &Value) -> String {
    v.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_string()
}

fn token_request_kind() -> ResourceInfo {
    let sa = resources::find("", "v1", "serviceaccounts").copied().unwrap_or(resources::RESOURCES[0]);
    ResourceInfo { group: "authentication.k8s.io", kind: "TokenRequest", ..sa }
}

impl TokenIssuer {
    /// Answers a TokenRequest for service account `namespace/name`.
    pub async fn token_request(
        &self,
        reg: &Registry,
        namespace: &str,
        name: &str,
        request: &Value,
    ) -> Result<Value, ApiError> {
        let kind = token_request_kind();
        let mut errs = Vec::new();
        let req_name = request.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        if !req_name.is_empty() && req_name != name {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("name"),
                req_name,
                "must match the service account name if specified",
            ));
        }
        let req_ns = request.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("");
        if !req_ns.is_empty() && req_ns != namespace {
            errs.push(FieldError::invalid(
                &Path::new("metadata").child("namespace"),
                req_ns,
                "must match the service account namespace if specified",
            ));
        }
        if !errs.is_empty() {
            return Err(ApiError::invalid(&kind, name, errs));
        }
        let sa_res = resources::find("", "v1", "serviceaccounts").ok_or(ApiError::NoSuchPath)?;
        let sa = reg.get(sa_res, Some(namespace), name).await?;
        let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
        let audiences: Vec<String> = match spec.get("audiences").and_then(Value::as_array) {
            Some(a) if !a.is_empty() => a.iter().filter_map(Value::as_str).map(String::from).collect(),
            _ => self.audiences.clone(),
        };
        let expiration = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
            Some(v) => {
                v.as_i64().ok_or_else(|| ApiError::BadRequest("spec.expirationSeconds must be an integer".into()))?
            }
        };
        let exp_path = Path::new("spec").child("expirationSeconds");
        if expiration < MIN_EXPIRATION_SECONDS {
            errs.push(FieldError::invalid(&exp_path, expiration, "may not specify a duration less than 10 minutes"));
        }
        if expiration > i64::from(u32::MAX) {
            errs.push(FieldError::invalid(
                &exp_path,
                expiration,
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        if !errs.is_empty() {
            return Err(ApiError::invalid(&kind, name, errs));
        }

        let mut claims_k8s = KubernetesClaims {
            namespace: namespace.to_string(),
            node: None,
            pod: None,
            secret: None,
            serviceaccount: ObjectRef { name: name.to_string(), uid: uid_of(&sa) },
            warnafter: None,
        };
        if let Some(r) = spec.get("boundObjectRef").filter(|r| r.is_object()) {
            let api_version = r.get("apiVersion").and_then(Value::as_str).unwrap_or("v1");
            let bound_kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
            let bound_name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let want_uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            let (res, ns) = match (api_version, bound_kind) {
                ("v1", "Pod") => (resources::find("", "v1", "pods"), Some(namespace)),
                ("v1", "Secret") => (resources::find("", "v1", "secrets"), Some(namespace)),
                ("v1", "Node") => (resources::find("", "v1", "nodes"), None),
                _ => {
                    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                    let version = api_version.rsplit_once('/').map_or(api_version, |(_, v)| v);
                    return Err(ApiError::BadRequest(format!(
                        "cannot bind token to object of type {group}/{version}, Kind={bound_kind}"
                    )));
                }
            };
            let res = res.ok_or(ApiError::NoSuchPath)?;
            let obj = reg.get(res, ns, bound_name).await?;
            let uid = uid_of(&obj);
            if bound_kind == "Pod" {
                let pod_sa = obj.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("");
                if pod_sa != name {
                    return Err(ApiError::BadRequest(format!(
                        "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
                    )));
                }
            }
            if !want_uid.is_empty() && want_uid != uid {
                return Err(ApiError::Conflict {
                    group: String::new(),
                    qualified: bound_kind.to_string(),
                    plural: bound_kind.to_string(),
                    name: bound_name.to_string(),
                    detail: format!(
                        "the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                });
            }
            let r = ObjectRef { name: bound_name.to_string(), uid };
            match bound_kind {
                "Pod" => {
                    if let Some(node) = obj.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
                    {
                        let nodes = resources::find("", "v1", "nodes").ok_or(ApiError::NoSuchPath)?;
                        if let Ok(n) = reg.get(nodes, None, node).await {
                            claims_k8s.node = Some(ObjectRef { name: node.to_string(), uid: uid_of(&n) });
                        }
                    }
                    claims_k8s.pod = Some(r);
                }
                "Secret" => claims_k8s.secret = Some(r),
                _ => claims_k8s.node = Some(r),
            }
        }
        let now = jiff::Timestamp::now().as_second();
        let mut lifetime = expiration;
        if expiration == WARN_ONLY_EXPIRATION_SECONDS && claims_k8s.pod.is_some() {
            claims_k8s.warnafter = Some(now + expiration);
            lifetime = EXTENDED_EXPIRATION_SECONDS;
        }
        let claims = Claims {
            aud: audiences.clone(),
            exp: now + lifetime,
            iat: now,
            iss: self.issuer.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: claims_k8s,
            nbf: now,
            sub: token::subject(namespace, name),
        };
        let signed = token::sign(&self.keys, &claims).map_err(|e| ApiError::Internal(e.to_string()))?;
        let expires = jiff::Timestamp::from_second(now + expiration).map(|t| t.to_string()).unwrap_or_default();
        let created = jiff::Timestamp::from_second(now).map(|t| t.to_string()).unwrap_or_default();
        let mut out_spec = spec.clone();
        out_spec["audiences"] = json!(audiences);
        out_spec["expirationSeconds"] = json!(expiration);
        if out_spec.get("boundObjectRef").is_some_and(Value::is_null) {
            if let Some(m) = out_spec.as_object_mut() {
                m.remove("boundObjectRef");
            }
        }
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
            "spec": out_spec,
            "status": {"token": signed, "expirationTimestamp": expires},
        }))
    }
}
