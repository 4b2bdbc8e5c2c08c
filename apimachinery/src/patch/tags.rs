//! The patch and list-type tags of the Kubernetes API fields: the `patchStrategy` and
//! `patchMergeKey` struct tags and the `+listType`/`+listMapKey` markers of `k8s.io/api`
//! v1.34 (core, apps, networking, discovery, coordination, autoscaling and meta v1), which the
//! OpenAPI spec carries as `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type` and `x-kubernetes-list-map-keys`.
//!
//! This one table feeds both users: the strategic merge patch's per-kind schemas
//! ([`super::patch_schema`]) and the extensions of the API server's OpenAPI documents,
//! which `kubectl apply` reads to compute the patch it sends (k8s-openapi's schemas do
//! not carry them).

/// The tags of one field of one API type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTags {
    /// The type's OpenAPI schema name, like `io.k8s.api.core.v1.PodSpec`.
    pub schema: String,
    pub field: &'static str,
    /// `merge`, `replace`, `retainKeys`, `merge,retainKeys`, or empty.
    pub strategy: &'static str,
    /// The merge key of a merged list of objects, or empty.
    pub merge_key: &'static str,
    /// `atomic`, `set`, `map`, or empty.
    pub list_type: &'static str,
    pub list_map_keys: &'static [&'static str],
}

/// `(schema, field, strategy, merge key, list type, list map keys)`; the schema is its
/// OpenAPI name without `io.k8s.api.` (or, for `meta.v1.`, `io.k8s.apimachinery.pkg.apis.`).
type Row = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static [&'static str]);

/// The OpenAPI schema name a row's short name stands for.
fn full_schema_name(short: &str) -> String {
    match short.strip_prefix("meta.v1.") {
        Some(rest) => format!("io.k8s.apimachinery.pkg.apis.meta.v1.{rest}"),
        None => format!("io.k8s.api.{short}"),
    }
}

/// Every tagged field.
pub fn field_tags() -> &'static [FieldTags] {
    static ALL: std::sync::OnceLock<Vec<FieldTags>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        ROWS.iter()
            .map(|&(schema, field, strategy, merge_key, list_type, list_map_keys)| FieldTags {
                schema: full_schema_name(schema),
                field,
                strategy,
                merge_key,
                list_type,
                list_map_keys,
            })
            .collect()
    })
}

#[rustfmt::skip]
static ROWS: &[Row] = &[
    ("core.v1.PersistentVolumeSpec", "accessModes", "", "", "atomic", &[]),
    ("core.v1.PersistentVolumeSpec", "mountOptions", "", "", "atomic", &[]),
    ("core.v1.PersistentVolumeClaimSpec", "accessModes", "", "", "atomic", &[]),
    ("core.v1.PersistentVolumeClaimStatus", "accessModes", "", "", "atomic", &[]),
    ("core.v1.PersistentVolumeClaimStatus", "conditions", "merge", "type", "map", &["type"]),
    ("core.v1.RBDVolumeSource", "monitors", "", "", "atomic", &[]),
    ("core.v1.RBDPersistentVolumeSource", "monitors", "", "", "atomic", &[]),
    ("core.v1.CephFSVolumeSource", "monitors", "", "", "atomic", &[]),
    ("core.v1.CephFSPersistentVolumeSource", "monitors", "", "", "atomic", &[]),
    ("core.v1.SecretVolumeSource", "items", "", "", "atomic", &[]),
    ("core.v1.SecretProjection", "items", "", "", "atomic", &[]),
    ("core.v1.ISCSIVolumeSource", "portals", "", "", "atomic", &[]),
    ("core.v1.ISCSIPersistentVolumeSource", "portals", "", "", "atomic", &[]),
    ("core.v1.FCVolumeSource", "targetWWNs", "", "", "atomic", &[]),
    ("core.v1.FCVolumeSource", "wwids", "", "", "atomic", &[]),
    ("core.v1.ConfigMapVolumeSource", "items", "", "", "atomic", &[]),
    ("core.v1.ConfigMapProjection", "items", "", "", "atomic", &[]),
    ("core.v1.ProjectedVolumeSource", "sources", "", "", "atomic", &[]),
    ("core.v1.HTTPGetAction", "httpHeaders", "", "", "atomic", &[]),
    ("core.v1.ExecAction", "command", "", "", "atomic", &[]),
    ("core.v1.Capabilities", "add", "", "", "atomic", &[]),
    ("core.v1.Capabilities", "drop", "", "", "atomic", &[]),
    ("core.v1.ResourceRequirements", "claims", "", "", "map", &["name"]),
    ("core.v1.Container", "command", "", "", "atomic", &[]),
    ("core.v1.Container", "args", "", "", "atomic", &[]),
    ("core.v1.Container", "ports", "merge", "containerPort", "map", &["containerPort", "protocol"]),
    ("core.v1.Container", "envFrom", "", "", "atomic", &[]),
    ("core.v1.Container", "env", "merge", "name", "map", &["name"]),
    ("core.v1.Container", "resizePolicy", "", "", "atomic", &[]),
    ("core.v1.Container", "restartPolicyRules", "", "", "atomic", &[]),
    ("core.v1.Container", "volumeMounts", "merge", "mountPath", "map", &["mountPath"]),
    ("core.v1.Container", "volumeDevices", "merge", "devicePath", "map", &["devicePath"]),
    ("core.v1.ContainerStatus", "volumeMounts", "merge", "mountPath", "map", &["mountPath"]),
    ("core.v1.ContainerStatus", "allocatedResourcesStatus", "merge", "name", "map", &["name"]),
    ("core.v1.ResourceStatus", "resources", "", "", "map", &["resourceID"]),
    ("core.v1.LinuxContainerUser", "supplementalGroups", "", "", "atomic", &[]),
    ("core.v1.ContainerRestartRuleOnExitCodes", "values", "", "", "set", &[]),
    ("core.v1.NodeSelector", "nodeSelectorTerms", "", "", "atomic", &[]),
    ("core.v1.NodeSelectorTerm", "matchExpressions", "", "", "atomic", &[]),
    ("core.v1.NodeSelectorTerm", "matchFields", "", "", "atomic", &[]),
    ("core.v1.NodeSelectorRequirement", "values", "", "", "atomic", &[]),
    ("core.v1.TopologySelectorTerm", "matchLabelExpressions", "", "", "atomic", &[]),
    ("core.v1.TopologySelectorLabelRequirement", "values", "", "", "atomic", &[]),
    ("core.v1.PodAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[]),
    ("core.v1.PodAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[]),
    ("core.v1.PodAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[]),
    ("core.v1.PodAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[]),
    ("core.v1.PodAffinityTerm", "namespaces", "", "", "atomic", &[]),
    ("core.v1.PodAffinityTerm", "matchLabelKeys", "", "", "atomic", &[]),
    ("core.v1.PodAffinityTerm", "mismatchLabelKeys", "", "", "atomic", &[]),
    ("core.v1.NodeAffinity", "preferredDuringSchedulingIgnoredDuringExecution", "", "", "atomic", &[]),
    ("core.v1.PodSpec", "volumes", "merge,retainKeys", "name", "map", &["name"]),
    ("core.v1.PodSpec", "initContainers", "merge", "name", "map", &["name"]),
    ("core.v1.PodSpec", "containers", "merge", "name", "map", &["name"]),
    ("core.v1.PodSpec", "ephemeralContainers", "merge", "name", "map", &["name"]),
    ("core.v1.PodSpec", "imagePullSecrets", "merge", "name", "map", &["name"]),
    ("core.v1.PodSpec", "tolerations", "", "", "atomic", &[]),
    ("core.v1.PodSpec", "hostAliases", "merge", "ip", "map", &["ip"]),
    ("core.v1.PodSpec", "readinessGates", "", "", "atomic", &[]),
    ("core.v1.PodSpec", "topologySpreadConstraints", "merge", "topologyKey", "map", &["topologyKey", "whenUnsatisfiable"]),
    ("core.v1.PodSpec", "schedulingGates", "merge", "name", "map", &["name"]),
    ("core.v1.PodSpec", "resourceClaims", "merge,retainKeys", "name", "map", &["name"]),
    ("core.v1.PodExtendedResourceClaimStatus", "requestMappings", "", "", "atomic", &[]),
    ("core.v1.TopologySpreadConstraint", "matchLabelKeys", "", "", "atomic", &[]),
    ("core.v1.HostAlias", "hostnames", "", "", "atomic", &[]),
    ("core.v1.PodSecurityContext", "supplementalGroups", "", "", "atomic", &[]),
    ("core.v1.PodSecurityContext", "sysctls", "", "", "atomic", &[]),
    ("core.v1.PodDNSConfig", "nameservers", "", "", "atomic", &[]),
    ("core.v1.PodDNSConfig", "searches", "", "", "atomic", &[]),
    ("core.v1.PodDNSConfig", "options", "", "", "atomic", &[]),
    ("core.v1.EphemeralContainer", "command", "", "", "atomic", &[]),
    ("core.v1.EphemeralContainer", "args", "", "", "atomic", &[]),
    ("core.v1.EphemeralContainer", "ports", "merge", "containerPort", "map", &["containerPort", "protocol"]),
    ("core.v1.EphemeralContainer", "envFrom", "", "", "atomic", &[]),
    ("core.v1.EphemeralContainer", "env", "merge", "name", "map", &["name"]),
    ("core.v1.EphemeralContainer", "resizePolicy", "", "", "atomic", &[]),
    ("core.v1.EphemeralContainer", "restartPolicyRules", "", "", "atomic", &[]),
    ("core.v1.EphemeralContainer", "volumeMounts", "merge", "mountPath", "map", &["mountPath"]),
    ("core.v1.EphemeralContainer", "volumeDevices", "merge", "devicePath", "map", &["devicePath"]),
    ("core.v1.PodStatus", "conditions", "merge", "type", "map", &["type"]),
    ("core.v1.PodStatus", "hostIPs", "merge", "ip", "atomic", &[]),
    ("core.v1.PodStatus", "podIPs", "merge", "ip", "map", &["ip"]),
    ("core.v1.PodStatus", "initContainerStatuses", "", "", "atomic", &[]),
    ("core.v1.PodStatus", "containerStatuses", "", "", "atomic", &[]),
    ("core.v1.PodStatus", "ephemeralContainerStatuses", "", "", "atomic", &[]),
    ("core.v1.PodStatus", "resourceClaimStatuses", "merge,retainKeys", "name", "map", &["name"]),
    ("core.v1.ReplicationControllerStatus", "conditions", "merge", "type", "map", &["type"]),
    ("core.v1.ServiceStatus", "conditions", "merge", "type", "map", &["type"]),
    ("core.v1.LoadBalancerStatus", "ingress", "", "", "atomic", &[]),
    ("core.v1.LoadBalancerIngress", "ports", "", "", "atomic", &[]),
    ("core.v1.ServiceSpec", "ports", "merge", "port", "map", &["port", "protocol"]),
    ("core.v1.ServiceSpec", "clusterIPs", "", "", "atomic", &[]),
    ("core.v1.ServiceSpec", "externalIPs", "", "", "atomic", &[]),
    ("core.v1.ServiceSpec", "loadBalancerSourceRanges", "", "", "atomic", &[]),
    ("core.v1.ServiceSpec", "ipFamilies", "", "", "atomic", &[]),
    ("core.v1.ServiceAccount", "secrets", "merge", "name", "map", &["name"]),
    ("core.v1.ServiceAccount", "imagePullSecrets", "", "", "atomic", &[]),
    ("core.v1.Endpoints", "subsets", "", "", "atomic", &[]),
    ("core.v1.EndpointSubset", "addresses", "", "", "atomic", &[]),
    ("core.v1.EndpointSubset", "notReadyAddresses", "", "", "atomic", &[]),
    ("core.v1.EndpointSubset", "ports", "", "", "atomic", &[]),
    ("core.v1.NodeSpec", "podCIDRs", "merge", "", "set", &[]),
    ("core.v1.NodeSpec", "taints", "", "", "atomic", &[]),
    ("core.v1.NodeStatus", "conditions", "merge", "type", "map", &["type"]),
    ("core.v1.NodeStatus", "addresses", "merge", "type", "map", &["type"]),
    ("core.v1.NodeStatus", "images", "", "", "atomic", &[]),
    ("core.v1.NodeStatus", "volumesInUse", "", "", "atomic", &[]),
    ("core.v1.NodeStatus", "volumesAttached", "", "", "atomic", &[]),
    ("core.v1.NodeStatus", "runtimeHandlers", "", "", "atomic", &[]),
    ("core.v1.ContainerImage", "names", "", "", "atomic", &[]),
    ("core.v1.NamespaceSpec", "finalizers", "", "", "atomic", &[]),
    ("core.v1.NamespaceStatus", "conditions", "merge", "type", "map", &["type"]),
    ("core.v1.PodExecOptions", "command", "", "", "atomic", &[]),
    ("core.v1.PodPortForwardOptions", "ports", "", "", "atomic", &[]),
    ("core.v1.LimitRangeSpec", "limits", "", "", "atomic", &[]),
    ("core.v1.ResourceQuotaSpec", "scopes", "", "", "atomic", &[]),
    ("core.v1.ScopeSelector", "matchExpressions", "", "", "atomic", &[]),
    ("core.v1.ScopedResourceSelectorRequirement", "values", "", "", "atomic", &[]),
    ("core.v1.ComponentStatus", "conditions", "merge", "type", "map", &["type"]),
    ("core.v1.DownwardAPIVolumeSource", "items", "", "", "atomic", &[]),
    ("core.v1.DownwardAPIProjection", "items", "", "", "atomic", &[]),
    ("apps.v1.StatefulSetSpec", "volumeClaimTemplates", "", "", "atomic", &[]),
    ("apps.v1.StatefulSetStatus", "conditions", "merge", "type", "map", &["type"]),
    ("apps.v1.DeploymentSpec", "strategy", "retainKeys", "", "", &[]),
    ("apps.v1.DeploymentStatus", "conditions", "merge", "type", "map", &["type"]),
    ("apps.v1.DaemonSetStatus", "conditions", "merge", "type", "map", &["type"]),
    ("apps.v1.ReplicaSetStatus", "conditions", "merge", "type", "map", &["type"]),
    ("networking.v1.NetworkPolicySpec", "ingress", "", "", "atomic", &[]),
    ("networking.v1.NetworkPolicySpec", "egress", "", "", "atomic", &[]),
    ("networking.v1.NetworkPolicySpec", "policyTypes", "", "", "atomic", &[]),
    ("networking.v1.NetworkPolicyIngressRule", "ports", "", "", "atomic", &[]),
    ("networking.v1.NetworkPolicyIngressRule", "from", "", "", "atomic", &[]),
    ("networking.v1.NetworkPolicyEgressRule", "ports", "", "", "atomic", &[]),
    ("networking.v1.NetworkPolicyEgressRule", "to", "", "", "atomic", &[]),
    ("networking.v1.IPBlock", "except", "", "", "atomic", &[]),
    ("networking.v1.IngressSpec", "tls", "", "", "atomic", &[]),
    ("networking.v1.IngressSpec", "rules", "", "", "atomic", &[]),
    ("networking.v1.IngressTLS", "hosts", "", "", "atomic", &[]),
    ("networking.v1.IngressLoadBalancerStatus", "ingress", "", "", "atomic", &[]),
    ("networking.v1.IngressLoadBalancerIngress", "ports", "", "", "atomic", &[]),
    ("networking.v1.HTTPIngressRuleValue", "paths", "", "", "atomic", &[]),
    ("networking.v1.ServiceCIDRSpec", "cidrs", "", "", "atomic", &[]),
    ("networking.v1.ServiceCIDRStatus", "conditions", "merge", "type", "map", &["type"]),
    ("discovery.v1.EndpointSlice", "endpoints", "", "", "atomic", &[]),
    ("discovery.v1.EndpointSlice", "ports", "", "", "atomic", &[]),
    ("discovery.v1.Endpoint", "addresses", "", "", "set", &[]),
    ("discovery.v1.EndpointHints", "forZones", "", "", "atomic", &[]),
    ("discovery.v1.EndpointHints", "forNodes", "", "", "atomic", &[]),
    ("meta.v1.ObjectMeta", "ownerReferences", "merge", "uid", "map", &["uid"]),
    ("meta.v1.ObjectMeta", "finalizers", "merge", "", "set", &[]),
    ("meta.v1.ObjectMeta", "managedFields", "", "", "atomic", &[]),
    ("meta.v1.DeleteOptions", "dryRun", "", "", "atomic", &[]),
    ("meta.v1.CreateOptions", "dryRun", "", "", "atomic", &[]),
    ("meta.v1.PatchOptions", "dryRun", "", "", "atomic", &[]),
    ("meta.v1.ApplyOptions", "dryRun", "", "", "atomic", &[]),
    ("meta.v1.UpdateOptions", "dryRun", "", "", "atomic", &[]),
    ("meta.v1.StatusDetails", "causes", "", "", "atomic", &[]),
    ("meta.v1.APIVersions", "versions", "", "", "atomic", &[]),
    ("meta.v1.APIVersions", "serverAddressByClientCIDRs", "", "", "atomic", &[]),
    ("meta.v1.APIGroupList", "groups", "", "", "atomic", &[]),
    ("meta.v1.APIGroup", "versions", "", "", "atomic", &[]),
    ("meta.v1.APIGroup", "serverAddressByClientCIDRs", "", "", "atomic", &[]),
    ("meta.v1.APIResource", "shortNames", "", "", "atomic", &[]),
    ("meta.v1.APIResource", "categories", "", "", "atomic", &[]),
    ("meta.v1.APIResourceList", "resources", "", "", "atomic", &[]),
    ("meta.v1.RootPaths", "paths", "", "", "atomic", &[]),
    ("meta.v1.LabelSelector", "matchExpressions", "", "", "atomic", &[]),
    ("meta.v1.LabelSelectorRequirement", "values", "", "", "atomic", &[]),
    ("meta.v1.FieldSelectorRequirement", "values", "", "", "atomic", &[]),
    ("meta.v1.Table", "columnDefinitions", "", "", "atomic", &[]),
    ("meta.v1.Table", "rows", "", "", "atomic", &[]),
    ("meta.v1.TableRow", "cells", "", "", "atomic", &[]),
    ("meta.v1.TableRow", "conditions", "", "", "atomic", &[]),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn rows_are_unique_and_well_formed() {
        let mut seen = BTreeSet::new();
        for t in field_tags() {
            let at = format!("{}.{}", t.schema, t.field);
            assert!(seen.insert(at.clone()), "{at} is tagged twice");
            assert!(["", "merge", "replace", "retainKeys", "merge,retainKeys"].contains(&t.strategy), "{at}");
            assert!(["", "atomic", "set", "map"].contains(&t.list_type), "{at}");
            assert_eq!(t.list_type == "map", !t.list_map_keys.is_empty(), "{at}: map keys go with listType map");
            assert!(t.merge_key.is_empty() || t.strategy.contains("merge"), "{at}: a merge key without merge");
        }
        assert_eq!(field_tags()[0].schema, "io.k8s.api.core.v1.PersistentVolumeSpec");
        assert!(field_tags().iter().any(|t| t.schema == "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    }

    #[test]
    fn every_tag_of_a_served_type_names_one_of_its_fields() {
        let (_, defs) = super::super::schema::served_kinds();
        let mut checked = 0;
        for t in field_tags() {
            let Some(def) = defs.get(&t.schema) else { continue };
            assert!(
                def.pointer(&format!("/properties/{}", t.field)).is_some(),
                "{} has no field {}",
                t.schema,
                t.field
            );
            checked += 1;
        }
        assert!(checked > 100, "only {checked} rows are of served types");
    }
}
