//! What kube-apiserver creates for itself at start: the system namespaces and the
//! `default/kubernetes` Service whose Endpoints and EndpointSlice point at the API
//! server (its bootstrap controller and endpoint reconciler).

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::registry::{key, Registry, WriteOptions};
use crate::resources::{self, ResourceInfo};
use crate::storage::{Compare, Op, Txn};

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Where the API server is reachable, for the `kubernetes` Service.
#[derive(Clone, Debug)]
pub struct Bootstrap {
    pub advertise_address: IpAddr,
    pub secure_port: u16,
    /// The `kubernetes` Service's ClusterIP: the first address of the Service CIDR.
    pub service_ip: IpAddr,
}

fn res(group: &str, plural: &str) -> Result<&'static ResourceInfo, ApiError> {
    resources::find(group, "v1", plural).ok_or_else(|| ApiError::Internal(format!("{plural} not served")))
}

async fn ensure(reg: &Registry, r: &ResourceInfo, ns: Option<&str>, obj: Value) -> Result<(), ApiError> {
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if reg.store.get(&key(r, ns, name)).await?.is_some() {
        return Ok(());
    }
    match reg.create(r, ns, obj, &WriteOptions::default()).await {
        Ok(_) | Err(ApiError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes an object the API server owns, bypassing validation (the endpoint may be a
/// loopback address in tests); only writes when it differs.
async fn upsert_owned(reg: &Registry, r: &ResourceInfo, ns: &str, name: &str, desired: Value) -> Result<(), ApiError> {
    let k = key(r, Some(ns), name);
    for _ in 0..8 {
        let cur = reg.store.get(&k).await?;
        let (compare, mut obj) = match &cur {
            Some(kv) => {
                let old: Value =
                    serde_json::from_slice(&kv.value).map_err(|e| ApiError::Internal(format!("decoding {k}: {e}")))?;
                let mut new = old.clone();
                for f in ["subsets", "endpoints", "ports", "addressType"] {
                    if let Some(v) = desired.get(f) {
                        new[f] = v.clone();
                    }
                }
                new["metadata"]["labels"] = desired["metadata"]["labels"].clone();
                if new == old {
                    return Ok(());
                }
                (Compare::ModRevision(k.clone(), kv.mod_revision), new)
            }
            None => {
                let mut new = desired.clone();
                crate::registry::strategy::prepare_for_create(r, &mut new);
                (Compare::Absent(k.clone()), new)
            }
        };
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        let value = crate::registry::encode(&obj)?;
        let out = reg.store.txn(Txn { compares: vec![compare], ops: vec![Op::Put { key: k.clone(), value }] }).await?;
        if out.succeeded {
            return Ok(());
        }
    }
    Err(ApiError::Internal(format!("could not write {k}")))
}

impl Bootstrap {
    /// Creates what is missing; safe to run at every start.
    pub async fn run(&self, reg: &Registry) -> Result<(), ApiError> {
        let namespaces = res("", "namespaces")?;
        for ns in SYSTEM_NAMESPACES {
            ensure(reg, namespaces, None, json!({"metadata": {"name": ns}})).await?;
        }
        let family = if self.advertise_address.is_ipv4() { "IPv4" } else { "IPv6" };
        let labels = json!({"component": "apiserver", "provider": "kubernetes"});
        ensure(
            reg,
            res("", "services")?,
            Some("default"),
            json!({
                "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
                "spec": {
                    "type": "ClusterIP",
                    "clusterIP": self.service_ip.to_string(),
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.secure_port}],
                    "sessionAffinity": "None",
                },
            }),
        )
        .await?;
        let ep_labels = json!({"endpointslice.kubernetes.io/skip-mirror": "true"});
        upsert_owned(
            reg,
            res("", "endpoints")?,
            "default",
            "kubernetes",
            json!({
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": "kubernetes", "namespace": "default", "labels": ep_labels},
                "subsets": [{
                    "addresses": [{"ip": self.advertise_address.to_string()}],
                    "ports": [{"name": "https", "port": self.secure_port, "protocol": "TCP"}],
                }],
            }),
        )
        .await?;
        let slices = resources::find("discovery.k8s.io", "v1", "endpointslices")
            .ok_or_else(|| ApiError::Internal("endpointslices not served".into()))?;
        upsert_owned(
            reg,
            slices,
            "default",
            "kubernetes",
            json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
                "addressType": family,
                "endpoints": [{"addresses": [self.advertise_address.to_string()], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": self.secure_port, "protocol": "TCP"}],
            }),
        )
        .await?;
        Ok(())
    }
}
