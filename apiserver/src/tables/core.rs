//! Printers of the core/v1 resources except pods: services, endpoints, nodes,
//! namespaces, secrets, configmaps, serviceaccounts and events.

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Secret, Service, ServiceAccount};
use serde_json::{json, Value};

use super::format::{join_host_port, labels, since_micro, since_time};
use super::{col, typed, Column, Doc, Printer, Row, RowFn, AGE, NAME, OBJECT_META};

pub(super) fn printer(group: &str, plural: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match (group, plural) {
        ("", "services") => (SERVICE, |v, now| typed(v, now, service)),
        ("", "endpoints") => (ENDPOINTS, |v, now| typed(v, now, endpoints)),
        ("", "nodes") => (NODE, |v, now| typed(v, now, node)),
        ("", "namespaces") => (NAMESPACE, |v, now| typed(v, now, namespace)),
        ("", "secrets") => (SECRET, |v, now| typed(v, now, secret)),
        ("", "configmaps") => (CONFIG_MAP, |v, now| typed(v, now, config_map)),
        ("", "serviceaccounts") => (SERVICE_ACCOUNT, |v, now| typed(v, now, service_account)),
        ("", "events") => (EVENT, |v, now| typed(v, now, event)),
        // The same printer as core/v1 (kube-apiserver prints both from its one internal type).
        ("events.k8s.io", "events") => (EVENT, events_v1_row),
        _ => return None,
    };
    Some(Printer { columns, row })
}

const SERVICE_SPEC: &str = "io.k8s.api.core.v1.ServiceSpec";

const SERVICE: &[Column] = &[
    NAME,
    col("Type", "string", 0, Doc::Field(SERVICE_SPEC, "type")),
    col("Cluster-IP", "string", 0, Doc::Field(SERVICE_SPEC, "clusterIP")),
    col("External-IP", "string", 0, Doc::Field(SERVICE_SPEC, "externalIPs")),
    col("Port(s)", "string", 0, Doc::Field(SERVICE_SPEC, "ports")),
    AGE,
    col("Selector", "string", 1, Doc::Field(SERVICE_SPEC, "selector")),
];

/// Load-balancer ingress points: IPs (or hostnames), sorted and de-duplicated. The
/// server renders wide, so nothing is clipped.
pub(super) fn ingress_points<'a>(points: impl Iterator<Item = (Option<&'a String>, Option<&'a String>)>) -> String {
    let set: BTreeSet<&str> = points
        .filter_map(|(ip, host)| match (ip.filter(|s| !s.is_empty()), host.filter(|s| !s.is_empty())) {
            (Some(ip), _) => Some(ip.as_str()),
            (None, Some(h)) => Some(h.as_str()),
            _ => None,
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn service_external_ip(svc: &Service) -> String {
    let spec = svc.spec.as_ref();
    let external: Vec<String> = spec.and_then(|s| s.external_ips.clone()).unwrap_or_default();
    match spec.and_then(|s| s.type_.as_deref()).unwrap_or_default() {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let ingress = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref());
            let lb = ingress_points(ingress.into_iter().flatten().map(|i| (i.ip.as_ref(), i.hostname.as_ref())));
            if !external.is_empty() {
                let mut all: Vec<String> =
                    if lb.is_empty() { vec![] } else { lb.split(',').map(String::from).collect() };
                all.extend(external);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => spec.and_then(|s| s.external_name.clone()).unwrap_or_default(),
        _ => "<unknown>".into(),
    }
}

fn service(svc: &Service, now: Timestamp) -> Row {
    let spec = svc.spec.clone().unwrap_or_default();
    let cluster_ip = spec.cluster_ips.as_ref().and_then(|ips| ips.first()).cloned().unwrap_or_else(|| "<none>".into());
    let ports: Vec<String> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            match p.node_port.filter(|n| *n > 0) {
                Some(np) => format!("{}:{np}/{proto}", p.port),
                None => format!("{}/{proto}", p.port),
            }
        })
        .collect();
    let ports = if ports.is_empty() { "<none>".into() } else { ports.join(",") };
    Row::new(vec![
        json!(svc.metadata.name.clone().unwrap_or_default()),
        json!(spec.type_.clone().unwrap_or_default()),
        json!(cluster_ip),
        json!(service_external_ip(svc)),
        json!(ports),
        json!(since_time(svc.metadata.creation_timestamp.as_ref(), now)),
        json!(labels(spec.selector.as_ref())),
    ])
}

const ENDPOINTS: &[Column] =
    &[NAME, col("Endpoints", "string", 0, Doc::Field("io.k8s.api.core.v1.Endpoints", "subsets")), AGE];

/// `10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...`: ready addresses with each port,
/// at most three shown; `<none>` without subsets.
pub(super) fn format_endpoints(ep: &Endpoints) -> String {
    let Some(subsets) = ep.subsets.as_ref().filter(|s| !s.is_empty()) else { return "<none>".into() };
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = ss.addresses.as_deref().unwrap_or_default();
        let ports = ss.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(a.ip.clone());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(&a.ip, port.port));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

fn endpoints(ep: &Endpoints, now: Timestamp) -> Row {
    Row::new(vec![
        json!(ep.metadata.name.clone().unwrap_or_default()),
        json!(format_endpoints(ep)),
        json!(since_time(ep.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const NODE_INFO: &str = "io.k8s.api.core.v1.NodeSystemInfo";
const NODE_STATUS: &str = "io.k8s.api.core.v1.NodeStatus";

const NODE: &[Column] = &[
    NAME,
    col("Status", "string", 0, Doc::Text("The status of the node")),
    col("Roles", "string", 0, Doc::Text("The roles of the node")),
    AGE,
    col("Version", "string", 0, Doc::Field(NODE_INFO, "kubeletVersion")),
    col("Internal-IP", "string", 1, Doc::Field(NODE_STATUS, "addresses")),
    col("External-IP", "string", 1, Doc::Field(NODE_STATUS, "addresses")),
    col("OS-Image", "string", 1, Doc::Field(NODE_INFO, "osImage")),
    col("Kernel-Version", "string", 1, Doc::Field(NODE_INFO, "kernelVersion")),
    col("Container-Runtime", "string", 1, Doc::Field(NODE_INFO, "containerRuntimeVersion")),
];

/// Roles from `node-role.kubernetes.io/<role>` labels and the `kubernetes.io/role` label.
fn node_roles(node: &Node) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in node.metadata.labels.iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.insert(v.clone());
        }
    }
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn node(node: &Node, now: Timestamp) -> Row {
    let status = node.status.clone().unwrap_or_default();
    let mut states: Vec<String> = Vec::new();
    if let Some(ready) = status.conditions.iter().flatten().rev().find(|c| c.type_ == "Ready") {
        states.push(if ready.status == "True" { "Ready".into() } else { "NotReady".into() });
    }
    if states.is_empty() {
        states.push("Unknown".into());
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        states.push("SchedulingDisabled".into());
    }
    let address = |kind: &str| {
        status
            .addresses
            .iter()
            .flatten()
            .find(|a| a.type_ == kind)
            .map(|a| a.address.clone())
            .unwrap_or_else(|| "<none>".into())
    };
    let info = status.node_info.clone().unwrap_or_default();
    let or_unknown = |s: String| if s.is_empty() { "<unknown>".to_string() } else { s };
    Row::new(vec![
        json!(node.metadata.name.clone().unwrap_or_default()),
        json!(states.join(",")),
        json!(node_roles(node)),
        json!(since_time(node.metadata.creation_timestamp.as_ref(), now)),
        json!(info.kubelet_version),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(or_unknown(info.os_image)),
        json!(or_unknown(info.kernel_version)),
        json!(or_unknown(info.container_runtime_version)),
    ])
}

const NAMESPACE: &[Column] = &[NAME, col("Status", "string", 0, Doc::Text("The status of the namespace")), AGE];

fn namespace(ns: &Namespace, now: Timestamp) -> Row {
    Row::new(vec![
        json!(ns.metadata.name.clone().unwrap_or_default()),
        json!(ns.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default()),
        json!(since_time(ns.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const SECRET: &[Column] = &[
    NAME,
    col("Type", "string", 0, Doc::Field("io.k8s.api.core.v1.Secret", "type")),
    col("Data", "string", 0, Doc::Field("io.k8s.api.core.v1.Secret", "data")),
    AGE,
];

fn secret(s: &Secret, now: Timestamp) -> Row {
    // stringData is folded into data on write; count keys only it has, should it remain.
    let data = s.data.as_ref();
    let extra = s.string_data.iter().flatten().filter(|(k, _)| !data.is_some_and(|d| d.contains_key(*k))).count();
    Row::new(vec![
        json!(s.metadata.name.clone().unwrap_or_default()),
        json!(s.type_.clone().unwrap_or_default()),
        json!(data.map(|d| d.len()).unwrap_or(0) + extra),
        json!(since_time(s.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const CONFIG_MAP: &[Column] =
    &[NAME, col("Data", "string", 0, Doc::Field("io.k8s.api.core.v1.ConfigMap", "data")), AGE];

fn config_map(cm: &ConfigMap, now: Timestamp) -> Row {
    let n = cm.data.as_ref().map(|d| d.len()).unwrap_or(0) + cm.binary_data.as_ref().map(|d| d.len()).unwrap_or(0);
    Row::new(vec![
        json!(cm.metadata.name.clone().unwrap_or_default()),
        json!(n),
        json!(since_time(cm.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const SERVICE_ACCOUNT: &[Column] =
    &[NAME, col("Secrets", "string", 0, Doc::Field("io.k8s.api.core.v1.ServiceAccount", "secrets")), AGE];

fn service_account(sa: &ServiceAccount, now: Timestamp) -> Row {
    Row::new(vec![
        json!(sa.metadata.name.clone().unwrap_or_default()),
        json!(sa.secrets.as_ref().map(|s| s.len()).unwrap_or(0)),
        json!(since_time(sa.metadata.creation_timestamp.as_ref(), now)),
    ])
}

const EVENT_DOC: &str = "io.k8s.api.core.v1.Event";

const EVENT: &[Column] = &[
    col("Last Seen", "string", 0, Doc::Field(EVENT_DOC, "lastTimestamp")),
    col("Type", "string", 0, Doc::Field(EVENT_DOC, "type")),
    col("Reason", "string", 0, Doc::Field(EVENT_DOC, "reason")),
    col("Object", "string", 0, Doc::Field(EVENT_DOC, "involvedObject")),
    col("Subobject", "string", 1, Doc::Field("io.k8s.api.core.v1.ObjectReference", "fieldPath")),
    col("Source", "string", 1, Doc::Field(EVENT_DOC, "source")),
    col("Message", "string", 0, Doc::Field(EVENT_DOC, "message")),
    col("First Seen", "string", 1, Doc::Field(EVENT_DOC, "firstTimestamp")),
    col("Count", "string", 1, Doc::Field(EVENT_DOC, "count")),
    Column { name: "Name", kind: "string", format: "name", priority: 1, doc: Doc::Field(OBJECT_META, "name") },
];

fn non_empty(s: Option<&String>) -> Option<&str> {
    s.map(String::as_str).filter(|s| !s.is_empty())
}

/// An events.k8s.io/v1 Event's row: its core/v1 form's.
fn events_v1_row(v: &Value, now: Timestamp) -> Option<Row> {
    let res = crate::resources::find("events.k8s.io", "v1", "events")?;
    typed(&crate::convert::to_storage(res, v.clone()), now, event)
}

fn event(e: &Event, now: Timestamp) -> Row {
    let first = match &e.first_timestamp {
        Some(t) => since_time(Some(t), now),
        None => since_micro(e.event_time.as_ref(), now),
    };
    let mut last = match &e.last_timestamp {
        Some(t) => since_time(Some(t), now),
        None => first.clone(),
    };
    let mut count = e.count.unwrap_or(0);
    if let Some(series) = &e.series {
        last = since_micro(series.last_observed_time.as_ref(), now);
        count = series.count.unwrap_or(0);
    } else if count == 0 {
        // Singleton events of the events.k8s.io API have no count.
        count = 1;
    }
    let obj = &e.involved_object;
    let kind = obj.kind.clone().unwrap_or_default().to_lowercase();
    let target = match non_empty(obj.name.as_ref()) {
        Some(name) => format!("{kind}/{name}"),
        None => kind,
    };
    let source = e.source.as_ref();
    let component = non_empty(source.and_then(|s| s.component.as_ref()))
        .or(non_empty(e.reporting_component.as_ref()))
        .unwrap_or_default();
    let host = non_empty(source.and_then(|s| s.host.as_ref())).or(non_empty(e.reporting_instance.as_ref()));
    let source = match host {
        Some(h) => format!("{component}, {h}"),
        None => component.to_string(),
    };
    Row::new(vec![
        json!(last),
        json!(e.type_.clone().unwrap_or_default()),
        json!(e.reason.clone().unwrap_or_default()),
        json!(target),
        json!(obj.field_path.clone().unwrap_or_default()),
        json!(source),
        json!(e.message.as_deref().unwrap_or_default().trim()),
        json!(first),
        json!(count),
        json!(e.metadata.name.clone().unwrap_or_default()),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::{ago, cells, columns};

    fn names(group: &str, plural: &str) -> Vec<String> {
        columns(group, plural).into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn service_columns_and_cells() {
        assert_eq!(names("", "services"), ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]);
        assert_eq!(columns("", "services")[6].1, 1, "SELECTOR is wide-only");
        let svc = json!({
            "metadata": {"name": "my-nginx", "creationTimestamp": ago(300)},
            "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                     "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "selector": {"run": "my-nginx"}}
        });
        assert_eq!(
            cells("", "services", svc),
            json!(["my-nginx", "ClusterIP", "10.96.0.12", "<none>", "80/TCP", "5m", "run=my-nginx"])
                .as_array()
                .cloned()
                .unwrap_or_default()
        );
        let np = json!({
            "metadata": {"name": "np", "creationTimestamp": ago(30)},
            "spec": {"type": "NodePort", "clusterIPs": ["10.96.5.5"], "externalIPs": ["192.0.2.1"],
                     "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "nodePort": 30053, "protocol": "UDP"}]}
        });
        assert_eq!(
            cells("", "services", np),
            json!(["np", "NodePort", "10.96.5.5", "192.0.2.1", "80:30080/TCP,53:30053/UDP", "30s", "<none>"])
                .as_array()
                .cloned()
                .unwrap_or_default()
        );
    }

    #[test]
    fn service_external_ip_by_type() {
        let lb = |status: serde_json::Value, external: serde_json::Value| {
            let svc = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.7"], "externalIPs": external, "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}, "status": status});
            cells("", "services", svc)[3].clone()
        };
        assert_eq!(lb(json!({}), json!(null)), "<pending>");
        assert_eq!(
            lb(
                json!({"loadBalancer": {"ingress": [{"ip": "192.168.56.241"}, {"hostname": "lb.example"}, {"ip": "192.168.56.240"}]}}),
                json!(null)
            ),
            "192.168.56.240,192.168.56.241,lb.example"
        );
        assert_eq!(
            lb(json!({"loadBalancer": {"ingress": [{"ip": "192.168.56.240"}]}}), json!(["203.0.113.9"])),
            "192.168.56.240,203.0.113.9"
        );
        let ext =
            json!({"metadata": {"name": "db"}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        let c = cells("", "services", ext);
        assert_eq!((&c[2], &c[3], &c[4]), (&json!("<none>"), &json!("db.example.com"), &json!("<none>")));
        let headless = json!({"metadata": {"name": "h"}, "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "ports": [{"port": 80, "protocol": "TCP"}]}});
        assert_eq!(cells("", "services", headless)[2], "None");
        assert_eq!(cells("", "services", json!({"metadata": {"name": "x"}}))[5], "<unknown>");
    }

    #[test]
    fn endpoints_truncate_after_three() {
        assert_eq!(names("", "endpoints"), ["Name", "Endpoints", "Age"]);
        let ep = json!({
            "metadata": {"name": "my-nginx", "creationTimestamp": ago(7200)},
            "subsets": [{"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.7"}], "ports": [{"port": 80, "protocol": "TCP"}, {"name": "https", "port": 443, "protocol": "TCP"}]}]
        });
        assert_eq!(cells("", "endpoints", ep)[1], "10.244.1.5:80,10.244.2.7:80,10.244.1.5:443 + 1 more...");
        let two = json!({"metadata": {"name": "a"}, "subsets": [{"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.7"}], "ports": [{"port": 9376}]}]});
        assert_eq!(cells("", "endpoints", two)[1], "10.244.1.5:9376,10.244.2.7:9376");
        let headless = json!({"metadata": {"name": "h"}, "subsets": [{"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}, {"ip": "10.1.0.3"}, {"ip": "10.1.0.4"}, {"ip": "10.1.0.5"}]}]});
        assert_eq!(cells("", "endpoints", headless)[1], "10.1.0.1,10.1.0.2,10.1.0.3 + 2 more...");
        assert_eq!(cells("", "endpoints", json!({"metadata": {"name": "e"}}))[1], "<none>");
        let not_ready = json!({"metadata": {"name": "n"}, "subsets": [{"notReadyAddresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}]});
        assert_eq!(cells("", "endpoints", not_ready)[1], "");
        let v6 = json!({"metadata": {"name": "v6"}, "subsets": [{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 80}]}]});
        assert_eq!(cells("", "endpoints", v6)[1], "[fd00::5]:80");
    }

    #[test]
    fn node_status_roles_and_wide_cells() {
        assert_eq!(
            names("", "nodes"),
            [
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime"
            ]
        );
        let n = json!({
            "metadata": {"name": "worker-1", "creationTimestamp": ago(3 * 86400 + 5 * 3600),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "ingress", "node-role.kubernetes.io/": "x"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "Hostname", "address": "worker-1"}, {"type": "InternalIP", "address": "192.168.56.11"}],
                       "nodeInfo": {"kubeletVersion": "v1.34.0-knet", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0",
                                    "containerRuntimeVersion": "", "architecture": "amd64", "bootID": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux", "systemUUID": ""}}
        });
        assert_eq!(
            cells("", "nodes", n),
            json!([
                "worker-1",
                "Ready,SchedulingDisabled",
                "control-plane,ingress",
                "3d5h",
                "v1.34.0-knet",
                "192.168.56.11",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0",
                "<unknown>"
            ])
            .as_array()
            .cloned()
            .unwrap_or_default()
        );
        let bare =
            json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        let c = cells("", "nodes", bare);
        assert_eq!((&c[1], &c[2], &c[4]), (&json!("NotReady"), &json!("<none>"), &json!("")));
        assert_eq!(cells("", "nodes", json!({"metadata": {"name": "n"}}))[1], "Unknown");
    }

    #[test]
    fn namespaces_secrets_configmaps_serviceaccounts() {
        assert_eq!(
            cells(
                "",
                "namespaces",
                json!({"metadata": {"name": "default", "creationTimestamp": ago(86400 * 10)}, "status": {"phase": "Active"}})
            ),
            json!(["default", "Active", "10d"]).as_array().cloned().unwrap_or_default()
        );
        assert_eq!(names("", "secrets"), ["Name", "Type", "Data", "Age"]);
        let s = json!({"metadata": {"name": "tls", "creationTimestamp": ago(5)}, "type": "kubernetes.io/tls", "data": {"tls.crt": "YQ==", "tls.key": "Yg=="}});
        assert_eq!(
            cells("", "secrets", s),
            json!(["tls", "kubernetes.io/tls", 2, "5s"]).as_array().cloned().unwrap_or_default()
        );
        let cm = json!({"metadata": {"name": "nginxconfigmap", "creationTimestamp": ago(61)}, "data": {"default.conf": "x"}, "binaryData": {"b": "YQ=="}});
        assert_eq!(
            cells("", "configmaps", cm),
            json!(["nginxconfigmap", 2, "61s"]).as_array().cloned().unwrap_or_default()
        );
        let sa = json!({"metadata": {"name": "default", "creationTimestamp": ago(100)}});
        assert_eq!(
            cells("", "serviceaccounts", sa),
            json!(["default", 0, "100s"]).as_array().cloned().unwrap_or_default()
        );
    }

    #[test]
    fn events_print_wide_columns_in_kube_order() {
        let cols = columns("", "events");
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"]
        );
        let wide: Vec<u64> = cols.iter().map(|(_, p)| *p).collect();
        assert_eq!(wide, [0, 0, 0, 0, 1, 1, 0, 1, 1, 1]);
        let e = json!({
            "metadata": {"name": "my-nginx.17b", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "my-nginx-abc", "fieldPath": "spec.containers{nginx}"},
            "reason": "Started", "message": "Started container nginx\n", "type": "Normal",
            "source": {"component": "kubelet", "host": "worker-1"},
            "firstTimestamp": ago(600), "lastTimestamp": ago(120), "count": 3
        });
        assert_eq!(
            cells("", "events", e),
            json!([
                "2m",
                "Normal",
                "Started",
                "pod/my-nginx-abc",
                "spec.containers{nginx}",
                "kubelet, worker-1",
                "Started container nginx",
                "10m",
                3,
                "my-nginx.17b"
            ])
            .as_array()
            .cloned()
            .unwrap_or_default()
        );
        let new_api = json!({
            "metadata": {"name": "e2"}, "involvedObject": {"kind": "Node"}, "reportingComponent": "knet-node-agent",
            "eventTime": ago(45).replace('Z', ".000000Z"), "type": "Warning"
        });
        let c = cells("", "events", new_api);
        assert_eq!(
            (&c[0], &c[3], &c[5], &c[7], &c[8]),
            (&json!("45s"), &json!("node"), &json!("knet-node-agent"), &json!("45s"), &json!(1))
        );
    }
}
