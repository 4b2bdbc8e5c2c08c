//! The resources knet serves: their group, version, kind, names and scope.
//!
//! This one table drives routing, discovery, OpenAPI, short names and categories,
//! so that adding a resource is one row here (plus its admission rules).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// One served resource, as `metav1.APIResource` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; `""` is the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// Lower-case plural, the path segment: `services`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources besides the object itself: `status`, `scale`.
    pub subresources: &'static [&'static str],
    /// Field selector labels beyond `metadata.name` and `metadata.namespace`.
    pub field_selectors: &'static [&'static str],
    /// `(group, plural)` of the resource whose storage this one shares, when it is another
    /// version's view of the same objects (events.k8s.io/v1 `events` are stored as core/v1
    /// `events`); see [`crate::convert`].
    pub stored_as: Option<(&'static str, &'static str)>,
}

/// The verbs every served resource supports.
pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `services` or `deployments.apps`, as kube-apiserver names a resource in messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The storage group segment: `core` for the core group.
    pub fn storage_group(&self) -> &'static str {
        let group = self.stored_as.map_or(self.group, |(g, _)| g);
        if group.is_empty() {
            "core"
        } else {
            group
        }
    }

    /// The storage plural segment (that of the resource whose storage this one shares).
    pub fn storage_plural(&self) -> &'static str {
        self.stored_as.map_or(self.plural, |(_, p)| p)
    }

    pub fn has_subresource(&self, sub: &str) -> bool {
        self.subresources.contains(&sub)
    }
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $ns:expr, $short:expr, $cat:expr, $sub:expr, $fields:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            kind: $kind,
            list_kind: concat!($kind, "List"),
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            subresources: $sub,
            field_selectors: $fields,
            stored_as: None,
        }
    };
}

/// Every resource knet serves.
pub static RESOURCES: &[ResourceInfo] = &[
    res!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        &["ns"],
        NONE,
        &["status", "finalize"],
        &["status.phase"]
    ),
    res!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        &["po"],
        ALL,
        &["status", "binding", "log", "exec", "attach", "portforward"],
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName"
        ]
    ),
    res!("", "v1", "Service", "services", "service", true, &["svc"], ALL, &["status"], NONE),
    res!("", "v1", "Endpoints", "endpoints", "endpoints", true, &["ep"], NONE, NONE, NONE),
    res!("", "v1", "Node", "nodes", "node", false, &["no"], NONE, &["status"], &["spec.unschedulable"]),
    res!("", "v1", "Secret", "secrets", "secret", true, NONE, NONE, NONE, &["type"]),
    res!("", "v1", "ConfigMap", "configmaps", "configmap", true, &["cm"], NONE, NONE, NONE),
    res!("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, &["sa"], NONE, &["token"], NONE),
    res!(
        "",
        "v1",
        "Event",
        "events",
        "event",
        true,
        &["ev"],
        NONE,
        NONE,
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type"
        ]
    ),
    res!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        true,
        &["rc"],
        ALL,
        &["status", "scale"],
        &["status.replicas"]
    ),
    res!("apps", "v1", "Deployment", "deployments", "deployment", true, &["deploy"], ALL, &["status", "scale"], NONE),
    res!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        &["rs"],
        ALL,
        &["status", "scale"],
        &["status.replicas"]
    ),
    res!("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", true, NONE, NONE, NONE, NONE),
    res!(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        true,
        &["netpol"],
        NONE,
        NONE,
        NONE
    ),
    res!("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, &["ing"], NONE, &["status"], NONE),
    res!("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", false, NONE, NONE, NONE, NONE),
    res!("coordination.k8s.io", "v1", "Lease", "leases", "lease", true, NONE, NONE, NONE, NONE),
    // The events.k8s.io view of core/v1 Events: one stored object, two APIs (as kube-apiserver).
    ResourceInfo {
        stored_as: Some(("", "events")),
        ..res!(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            "event",
            true,
            &["ev"],
            NONE,
            NONE,
            &[
                "regarding.kind",
                "regarding.namespace",
                "regarding.name",
                "regarding.uid",
                "regarding.apiVersion",
                "regarding.resourceVersion",
                "regarding.fieldPath",
                "reason",
                "reportingController",
                "source",
                "type"
            ]
        )
    },
];

/// The resource whose storage `res` shares (`res` itself for most): the one whose
/// objects, admission and allocation rules apply to what is stored.
pub fn storage_of(res: &ResourceInfo) -> &ResourceInfo {
    match res.stored_as {
        None => res,
        Some((group, plural)) => {
            RESOURCES.iter().find(|r| r.group == group && r.plural == plural && r.stored_as.is_none()).unwrap_or(res)
        }
    }
}

/// Looks a resource up by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by `apiVersion` and `kind`.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.kind == kind && r.api_version() == api_version)
}

/// The API groups served, in discovery order, with their versions.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

/// Calls `$body` with `$t` bound to the k8s-openapi type of a resource, by plural.
///
/// Used where knet needs the typed object: strict decoding, defaulting, validation,
/// tables. Evaluates to `None` for an unknown plural.
#[macro_export]
macro_rules! with_type {
    ($res:expr, $t:ident => $body:expr) => {{
        use k8s_openapi::api::{
            apps::v1 as apps, coordination::v1 as coord, core::v1 as core, discovery::v1 as disc, events::v1 as ev,
            networking::v1 as net,
        };
        match ($res.group, $res.plural) {
            ("", "namespaces") => {
                type $t = core::Namespace;
                Some($body)
            }
            ("", "pods") => {
                type $t = core::Pod;
                Some($body)
            }
            ("", "services") => {
                type $t = core::Service;
                Some($body)
            }
            ("", "endpoints") => {
                type $t = core::Endpoints;
                Some($body)
            }
            ("", "nodes") => {
                type $t = core::Node;
                Some($body)
            }
            ("", "secrets") => {
                type $t = core::Secret;
                Some($body)
            }
            ("", "configmaps") => {
                type $t = core::ConfigMap;
                Some($body)
            }
            ("", "serviceaccounts") => {
                type $t = core::ServiceAccount;
                Some($body)
            }
            ("", "events") => {
                type $t = core::Event;
                Some($body)
            }
            ("", "replicationcontrollers") => {
                type $t = core::ReplicationController;
                Some($body)
            }
            ("apps", "deployments") => {
                type $t = apps::Deployment;
                Some($body)
            }
            ("apps", "replicasets") => {
                type $t = apps::ReplicaSet;
                Some($body)
            }
            ("discovery.k8s.io", "endpointslices") => {
                type $t = disc::EndpointSlice;
                Some($body)
            }
            ("networking.k8s.io", "networkpolicies") => {
                type $t = net::NetworkPolicy;
                Some($body)
            }
            ("networking.k8s.io", "ingresses") => {
                type $t = net::Ingress;
                Some($body)
            }
            ("networking.k8s.io", "ingressclasses") => {
                type $t = net::IngressClass;
                Some($body)
            }
            ("coordination.k8s.io", "leases") => {
                type $t = coord::Lease;
                Some($body)
            }
            ("events.k8s.io", "events") => {
                type $t = ev::Event;
                Some($body)
            }
            _ => None,
        }
    }};
}

/// Decodes JSON into a typed object.
pub fn to_typed<T: DeserializeOwned>(v: &Value) -> Result<T, serde_json::Error> {
    T::deserialize(v)
}

/// Encodes a typed object back to JSON.
pub fn from_typed<T: Serialize>(t: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_has_a_type() {
        for r in RESOURCES {
            let ok = with_type!(r, T => {
                let kind = <T as k8s_openapi::Resource>::KIND;
                let plural = <T as k8s_openapi::Resource>::URL_PATH_SEGMENT;
                let av = <T as k8s_openapi::Resource>::API_VERSION;
                assert_eq!(kind, r.kind);
                assert_eq!(plural, r.plural);
                assert_eq!(av, r.api_version());
            });
            assert!(ok.is_some(), "{} has no type", r.plural);
        }
    }
}
