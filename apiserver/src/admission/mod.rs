//! Admission: kube-apiserver's registry strategies for every served kind — defaulting,
//! the preparation of creates and updates, and validation — with kube-apiserver's field
//! paths and messages so that kubectl prints what it prints against a real cluster.
//!
//! The registry drives a write like this:
//! 1. [`default`] on the decoded body (kube applies defaults while decoding),
//! 2. [`prepare_for_create`] (the status a new object starts with) or [`prepare_for_update`]
//!    (Service clusterIP/nodePort carry-over and type-change cleanup); system metadata, the
//!    generation and what each subresource may change are the registry's `strategy`,
//! 3. [`validate`] (or [`validate_status`] for a `/status` write); a non-empty list
//!    becomes `ApiError::invalid(res, name, errs)`.
//!
//! Objects are decoded into the k8s-openapi types and worked on typed; defaulting and
//! preparation re-encode them, which also drops fields the type does not know.
//!
//! Per-kind modules: [`service`], [`endpoints`] (Endpoints, EndpointSlice), [`pod`],
//! [`workloads`] (ReplicationController, ReplicaSet, Deployment), [`networking`]
//! (NetworkPolicy, Ingress, IngressClass), [`events`] (core/v1 and events.k8s.io/v1
//! Events) and [`cluster`] (Namespace, Node, Secret, ConfigMap, ServiceAccount, Lease);
//! [`meta`] holds what they share.
//!
//! A resource that is a view of another's storage (events.k8s.io Events, see
//! [`crate::convert`]) is defaulted and prepared as the stored kind; [`validate`] gets the
//! stored form too, with the resource the request named, since the rules may differ.

mod cluster;
mod endpoints;
mod events;
mod meta;
mod networking;
mod pod;
mod podspec;
mod service;
mod workloads;

use std::net::IpAddr;
use std::sync::RwLock;

use ipnet::{IpNet, Ipv4Net};
use knet_apimachinery::field::{ErrorType, FieldError, Path};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceInfo;

pub use service::{DEFAULT_CLIENT_IP_TIMEOUT, MAX_CLIENT_IP_TIMEOUT};

/// What can go wrong while admitting an object (besides it being invalid).
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The JSON is not a valid object of the kind.
    #[error("{kind} in version {version:?} cannot be handled as a {kind}: {source}")]
    Decode { kind: &'static str, version: String, source: serde_json::Error },
    /// The defaulted object could not be encoded back to JSON.
    #[error("encoding the defaulted {kind}: {source}")]
    Encode { kind: &'static str, source: serde_json::Error },
}

impl From<AdmissionError> for ApiError {
    fn from(e: AdmissionError) -> Self {
        match e {
            AdmissionError::Decode { .. } => ApiError::BadRequest(e.to_string()),
            AdmissionError::Encode { .. } => ApiError::Internal(e.to_string()),
        }
    }
}

/// Cluster settings admission needs: the Service CIDRs decide the IP families of
/// Services and which addresses are Service IPs (never valid endpoints).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionConfig {
    pub service_cidrs: Vec<IpNet>,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        let cidr = Ipv4Net::new(std::net::Ipv4Addr::new(10, 96, 0, 0), 16).map(IpNet::V4);
        AdmissionConfig { service_cidrs: cidr.into_iter().collect() }
    }
}

/// An IP family, `IPv4` or `IPv6` in the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub(crate) fn of(ip: &IpAddr) -> Self {
        match knet_apimachinery::validation::unmap(*ip) {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "IPv4" => Some(IpFamily::V4),
            "IPv6" => Some(IpFamily::V6),
            _ => None,
        }
    }
}

impl AdmissionConfig {
    /// The families the cluster serves, primary first.
    pub(crate) fn families(&self) -> Vec<IpFamily> {
        let mut out = Vec::new();
        for net in &self.service_cidrs {
            let f = IpFamily::of(&net.addr());
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    pub(crate) fn has_family(&self, family: IpFamily) -> bool {
        self.families().contains(&family)
    }

    pub(crate) fn default_family(&self) -> IpFamily {
        self.families().first().copied().unwrap_or(IpFamily::V4)
    }

    /// The Service CIDR `ip` falls in, if any.
    pub(crate) fn service_cidr_of(&self, ip: &IpAddr) -> Option<IpNet> {
        let ip = knet_apimachinery::validation::unmap(*ip);
        self.service_cidrs.iter().find(|net| net.contains(&ip)).copied()
    }
}

static CONFIG: RwLock<Option<AdmissionConfig>> = RwLock::new(None);

/// Sets the cluster settings (call once at start-up, before serving).
pub fn configure(cfg: AdmissionConfig) {
    let mut guard = CONFIG.write().unwrap_or_else(|e| e.into_inner());
    *guard = Some(cfg);
}

/// The current cluster settings (the defaults until [`configure`] is called).
pub fn config() -> AdmissionConfig {
    CONFIG.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
}

/// An optional string field as `&str` (`""` when unset), Go's zero value.
pub(crate) fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}

fn decode<T: DeserializeOwned>(res: &ResourceInfo, obj: &Value) -> Result<T, AdmissionError> {
    T::deserialize(obj).map_err(|source| AdmissionError::Decode { kind: res.kind, version: res.api_version(), source })
}

fn mutate<T: DeserializeOwned + Serialize>(
    res: &ResourceInfo,
    obj: &mut Value,
    f: impl FnOnce(&mut T),
) -> Result<(), AdmissionError> {
    let mut typed: T = decode(res, obj)?;
    f(&mut typed);
    *obj = serde_json::to_value(&typed).map_err(|source| AdmissionError::Encode { kind: res.kind, source })?;
    Ok(())
}

fn mutate_with_old<T: DeserializeOwned + Serialize>(
    res: &ResourceInfo,
    obj: &mut Value,
    old: &Value,
    f: impl FnOnce(&mut T, &T),
) -> Result<(), AdmissionError> {
    let old: T = decode(res, old)?;
    mutate(res, obj, |new: &mut T| f(new, &old))
}

/// The error reported when an object handed to validation does not decode (the registry
/// decodes before validating, so this only shows a bug).
fn undecodable(e: AdmissionError) -> Vec<FieldError> {
    vec![FieldError { kind: ErrorType::Internal, field: Path::new(""), value: None, detail: e.to_string() }]
}

fn check<T: DeserializeOwned>(
    res: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
    f: impl FnOnce(&T, Option<&T>) -> Vec<FieldError>,
) -> Vec<FieldError> {
    let new: T = match decode(res, obj) {
        Ok(t) => t,
        Err(e) => return undecodable(e),
    };
    let old: Option<T> = match old.map(|o| decode(res, o)).transpose() {
        Ok(o) => o,
        Err(e) => return undecodable(e),
    };
    f(&new, old.as_ref())
}

fn check_status<T: DeserializeOwned>(
    res: &ResourceInfo,
    obj: &Value,
    old: &Value,
    f: impl FnOnce(&T, &T) -> Vec<FieldError>,
) -> Vec<FieldError> {
    check(res, obj, Some(old), |new: &T, old: Option<&T>| match old {
        Some(old) => f(new, old),
        None => Vec::new(),
    })
}

/// Applies kube-apiserver's defaulting for the resource's kind to `obj` (JSON), in place.
/// Fails with `ApiError::BadRequest` if the JSON does not decode as the kind's type.
pub fn default(res: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let cfg = config();
    let done = match (res.group, res.plural) {
        ("", "namespaces") => mutate(res, obj, cluster::default_namespace),
        ("", "pods") => mutate(res, obj, pod::default_pod),
        ("", "services") => {
            mutate(res, obj, |svc: &mut k8s_openapi::api::core::v1::Service| service::default(svc, &cfg))
        }
        ("", "endpoints") => mutate(res, obj, endpoints::default_endpoints),
        ("", "nodes") => mutate(res, obj, cluster::default_node),
        ("", "secrets") => mutate(res, obj, cluster::default_secret),
        ("", "replicationcontrollers") => mutate(res, obj, workloads::default_replication_controller),
        ("apps", "deployments") => mutate(res, obj, workloads::default_deployment),
        ("apps", "replicasets") => mutate(res, obj, workloads::default_replica_set),
        ("discovery.k8s.io", "endpointslices") => mutate(res, obj, endpoints::default_endpoint_slice),
        ("networking.k8s.io", "networkpolicies") => mutate(res, obj, networking::default_network_policy),
        ("networking.k8s.io", "ingressclasses") => mutate(res, obj, networking::default_ingress_class),
        _ => {
            let checked = crate::with_type!(res, T => mutate(res, obj, |_: &mut T| {}));
            checked.unwrap_or(Ok(()))
        }
    };
    done.map_err(ApiError::from)
}

/// Prepares a new object for storage as kube-apiserver's `PrepareForCreate` does: status
/// is reset to what a new object of the kind starts with (the registry's strategy sets the
/// system metadata and generation). Call after [`default`], before [`validate`].
pub fn prepare_for_create(res: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let done = match (res.group, res.plural) {
        ("", "namespaces") => mutate(res, obj, cluster::prepare_namespace_create),
        ("", "pods") => mutate(res, obj, pod::prepare_for_create),
        ("", "services") => mutate(res, obj, service::prepare_for_create),
        ("", "replicationcontrollers") => mutate(res, obj, workloads::prepare_replication_controller_create),
        ("apps", "deployments") => mutate(res, obj, workloads::prepare_deployment_create),
        ("apps", "replicasets") => mutate(res, obj, workloads::prepare_replica_set_create),
        ("networking.k8s.io", "ingresses") => mutate(res, obj, networking::prepare_ingress_create),
        _ => Ok(()),
    };
    done.map_err(ApiError::from)
}

/// Prepares an update of the main resource as kube-apiserver's `PrepareForUpdate` does, where
/// a kind needs more than the registry's generic strategy (which keeps the stored status of
/// kinds with a `/status` subresource and moves the generation): Services keep their
/// allocated values and drop fields their new type does not use. Call after [`default`],
/// before [`validate`].
pub fn prepare_for_update(res: &ResourceInfo, obj: &mut Value, old: &Value) -> Result<(), ApiError> {
    let done = match (res.group, res.plural) {
        ("", "services") => mutate_with_old(res, obj, old, service::prepare_for_update),
        _ => Ok(()),
    };
    done.map_err(ApiError::from)
}

/// Validates an object (after defaulting) for create (`old == None`) or update; empty = valid.
/// Includes object-metadata validation (name rules per kind, generateName, labels,
/// annotations, namespace).
pub fn validate(res: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let cfg = config();
    match (res.group, res.plural) {
        ("", "namespaces") => check(res, obj, old, cluster::validate_namespace),
        ("", "pods") => check(res, obj, old, pod::validate),
        ("", "services") => check(res, obj, old, |new, old| service::validate(new, old, &cfg)),
        ("", "endpoints") => check(res, obj, old, |new, old| endpoints::validate_endpoints(new, old, &cfg)),
        ("", "nodes") => check(res, obj, old, cluster::validate_node),
        ("", "secrets") => check(res, obj, old, cluster::validate_secret),
        ("", "configmaps") => check(res, obj, old, cluster::validate_config_map),
        ("", "serviceaccounts") => check(res, obj, old, cluster::validate_service_account),
        ("", "events") => check(res, obj, old, events::validate_event),
        // Stored as core/v1 Events: `obj` is in the core form, checked with the stricter rules of this API.
        ("events.k8s.io", "events") => check(res, obj, old, events::validate_events_v1),
        ("", "replicationcontrollers") => check(res, obj, old, workloads::validate_replication_controller),
        ("apps", "deployments") => {
            let has_selector = has_selector(obj);
            check(res, obj, old, |new, old| workloads::validate_deployment(new, old, has_selector))
        }
        ("apps", "replicasets") => {
            let has_selector = has_selector(obj);
            check(res, obj, old, |new, old| workloads::validate_replica_set(new, old, has_selector))
        }
        ("discovery.k8s.io", "endpointslices") => {
            check(res, obj, old, |new, old| endpoints::validate_endpoint_slice(new, old, &cfg))
        }
        ("networking.k8s.io", "networkpolicies") => check(res, obj, old, networking::validate_network_policy),
        ("networking.k8s.io", "ingresses") => check(res, obj, old, networking::validate_ingress),
        ("networking.k8s.io", "ingressclasses") => check(res, obj, old, networking::validate_ingress_class),
        ("coordination.k8s.io", "leases") => check(res, obj, old, cluster::validate_lease),
        _ => Vec::new(),
    }
}

/// Whether an apps/v1 object's JSON carries `spec.selector` (the typed object cannot tell a
/// missing selector from an empty one, and kube-apiserver reports them differently).
fn has_selector(obj: &Value) -> bool {
    obj.pointer("/spec/selector").is_some_and(|s| !s.is_null())
}

/// Validates a status-subresource update (only status may change; validate the status).
pub fn validate_status(res: &ResourceInfo, obj: &Value, old: &Value) -> Vec<FieldError> {
    match (res.group, res.plural) {
        ("", "namespaces") => check_status(res, obj, old, cluster::validate_namespace_status),
        ("", "pods") => check_status(res, obj, old, pod::validate_status),
        ("", "services") => check_status(res, obj, old, service::validate_status),
        ("", "nodes") => check_status(res, obj, old, cluster::validate_node_status),
        ("", "replicationcontrollers") => {
            check_status(res, obj, old, workloads::validate_replication_controller_status)
        }
        ("apps", "deployments") => check_status(res, obj, old, workloads::validate_deployment_status),
        ("apps", "replicasets") => check_status(res, obj, old, workloads::validate_replica_set_status),
        ("networking.k8s.io", "ingresses") => check_status(res, obj, old, networking::validate_ingress_status),
        _ => {
            let checked = crate::with_type!(res, T => check_status(res, obj, old, |new: &T, old: &T| {
                meta::validate_object_meta_update(
                    k8s_openapi::Metadata::metadata(new),
                    k8s_openapi::Metadata::metadata(old),
                    &Path::new("metadata"),
                )
            }));
            checked.unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests;
