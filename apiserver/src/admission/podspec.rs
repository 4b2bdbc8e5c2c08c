//! Pod specs, in Pods and in the pod templates of workloads: defaulting
//! (`SetDefaults_PodSpec`, `SetDefaults_Container`, volume and probe defaults) and
//! validation (`ValidatePodSpec`, `ValidatePodTemplateSpec`): containers, ports, env,
//! volumes and mounts, DNS policy and config, host aliases, tolerations, hostnames.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, PodDNSConfig, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, Toleration,
    Volume,
};
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;
use serde_json::Value;

use super::meta;
use super::s;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCH_PATHS: usize = 32;
const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;
/// Mode of files projected from Secrets, ConfigMaps, the downward API (0644).
const DEFAULT_VOLUME_MODE: i32 = 0o644;
/// Env `fieldRef` paths a container may read.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// The tag of an image reference (`""` when pinned by digest only, `latest` when absent).
fn image_tag(image: &str) -> &str {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => tag,
        None if digest.is_some() => "",
        None => "latest",
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
pub fn default_pod_spec(spec: &mut PodSpec) {
    if s(&spec.dns_policy).is_empty() {
        spec.dns_policy = Some("ClusterFirst".into());
    }
    if s(&spec.restart_policy).is_empty() {
        spec.restart_policy = Some("Always".into());
    }
    if spec.security_context.is_none() {
        spec.security_context = Some(PodSecurityContext::default());
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(30);
    }
    if s(&spec.scheduler_name).is_empty() {
        spec.scheduler_name = Some("default-scheduler".into());
    }
    for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut().flatten()) {
        default_container(c);
    }
    for vol in spec.volumes.iter_mut().flatten() {
        default_volume(vol);
    }
}

fn default_container(c: &mut Container) {
    if s(&c.image_pull_policy).is_empty() {
        let policy = if image_tag(s(&c.image)) == "latest" { "Always" } else { "IfNotPresent" };
        c.image_pull_policy = Some(policy.into());
    }
    if s(&c.termination_message_path).is_empty() {
        c.termination_message_path = Some("/dev/termination-log".into());
    }
    if s(&c.termination_message_policy).is_empty() {
        c.termination_message_policy = Some("File".into());
    }
    for port in c.ports.iter_mut().flatten() {
        if s(&port.protocol).is_empty() {
            port.protocol = Some("TCP".into());
        }
    }
    for probe in [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe].into_iter().flatten() {
        default_probe(probe);
    }
    if let Some(lc) = &mut c.lifecycle {
        for handler in [&mut lc.post_start, &mut lc.pre_stop].into_iter().flatten() {
            if let Some(get) = &mut handler.http_get {
                default_http_get(&mut get.path, &mut get.scheme);
            }
        }
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(field) = env.value_from.as_mut().and_then(|f| f.field_ref.as_mut()) {
            if s(&field.api_version).is_empty() {
                field.api_version = Some("v1".into());
            }
        }
    }
}

fn default_http_get(path: &mut Option<String>, scheme: &mut Option<String>) {
    if s(path).is_empty() {
        *path = Some("/".into());
    }
    if s(scheme).is_empty() {
        *scheme = Some("HTTP".into());
    }
}

fn default_probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    }
    if let Some(get) = &mut p.http_get {
        default_http_get(&mut get.path, &mut get.scheme);
    }
}

/// The volume source keys set on a volume (`emptyDir`, `secret`, …), in the API's order.
fn volume_sources(vol: &Volume) -> Vec<String> {
    match serde_json::to_value(vol) {
        Ok(Value::Object(map)) => map.keys().filter(|k| *k != "name").cloned().collect(),
        _ => Vec::new(),
    }
}

fn default_volume(vol: &mut Volume) {
    if volume_sources(vol).is_empty() {
        vol.empty_dir = Some(Default::default());
    }
    if let Some(src) = &mut vol.secret {
        src.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(src) = &mut vol.config_map {
        src.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(src) = &mut vol.downward_api {
        src.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(src) = &mut vol.host_path {
        src.type_.get_or_insert_with(String::new);
    }
    if let Some(src) = &mut vol.projected {
        src.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        for proj in src.sources.iter_mut().flatten() {
            if let Some(token) = &mut proj.service_account_token {
                token.expiration_seconds.get_or_insert(3600);
            }
        }
    }
}

/// Validation switches that differ between a Pod and a pod template.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpecOptions {
    /// The spec belongs to a Pod (not a template): hostPort must equal containerPort
    /// with hostNetwork.
    pub resource_is_pod: bool,
}

/// `ValidatePodTemplateSpec`.
pub fn validate_template(template: &PodTemplateSpec, path: &Path) -> Vec<FieldError> {
    let md = template.metadata.clone().unwrap_or_default();
    let mut errs = meta::validate_labels(md.labels.as_ref(), &path.child("labels"));
    errs.extend(meta::validate_annotations(md.annotations.as_ref(), &path.child("annotations")));
    let spec = template.spec.clone().unwrap_or_default();
    errs.extend(validate_pod_spec(&spec, &path.child("spec"), SpecOptions::default()));
    if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpec` (the parts that matter for knet's workloads).
pub fn validate_pod_spec(spec: &PodSpec, path: &Path, opts: SpecOptions) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(&path.child("terminationGracePeriodSeconds"), ""));
    }
    let (volumes, vol_errs) = validate_volumes(spec.volumes.as_deref().unwrap_or(&[]), &path.child("volumes"));
    errs.extend(vol_errs);
    errs.extend(validate_containers(&spec.containers, &volumes, &path.child("containers")));
    errs.extend(validate_init_containers(spec, &volumes, &path.child("initContainers")));
    errs.extend(host_network_ports(spec, path, opts));
    errs.extend(enum_value(s(&spec.restart_policy), &["Always", "OnFailure", "Never"], &path.child("restartPolicy")));
    errs.extend(enum_value(
        s(&spec.dns_policy),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        &path.child("dnsPolicy"),
    ));
    errs.extend(meta::validate_labels(spec.node_selector.as_ref(), &path.child("nodeSelector")));
    errs.extend(validate_dns_config(spec.dns_config.as_ref(), s(&spec.dns_policy), &path.child("dnsConfig")));
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        errs.extend(meta::qualified_name(
            &gate.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
        ));
    }
    let mut gates = BTreeSet::new();
    for (i, gate) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = path.child("schedulingGates").index(i);
        errs.extend(meta::qualified_name(&gate.name, &p));
        if !gates.insert(gate.name.clone()) {
            errs.push(FieldError::duplicate(&p, gate.name.as_str()));
        }
    }
    if let Some(sa) = spec.service_account_name.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(meta::each(&path.child("serviceAccountName"), sa, v::name_is_dns_subdomain(sa, false)));
    }
    if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(meta::each(&path.child("nodeName"), node, v::name_is_dns_subdomain(node, false)));
    }
    if let Some(ads) = spec.active_deadline_seconds {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                ads,
                v::inclusive_range_error(1, i32::MAX.into()),
            ));
        }
    }
    if let Some(host) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(meta::dns1123_label(host, &path.child("hostname")));
    }
    if let Some(sub) = spec.subdomain.as_deref().filter(|h| !h.is_empty()) {
        errs.extend(meta::dns1123_label(sub, &path.child("subdomain")));
    }
    errs.extend(validate_tolerations(spec.tolerations.as_deref().unwrap_or(&[]), &path.child("tolerations")));
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let p = path.child("hostAliases").index(i);
        errs.extend(meta::ip(&alias.ip, &p.child("ip")));
        for (j, host) in alias.hostnames.iter().flatten().enumerate() {
            errs.extend(meta::dns1123_subdomain(host, &p.child("hostnames").index(j)));
        }
    }
    if let Some(pc) = spec.priority_class_name.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(meta::each(&path.child("priorityClassName"), pc, v::name_is_dns_subdomain(pc, false)));
    }
    errs
}

/// Required when empty, `Unsupported value` when not one of `valid`.
fn enum_value(value: &str, valid: &[&str], path: &Path) -> Vec<FieldError> {
    if value.is_empty() {
        vec![FieldError::required(path, "")]
    } else if !valid.contains(&value) {
        vec![FieldError::not_supported(path, value, valid)]
    } else {
        Vec::new()
    }
}

fn validate_volumes(volumes: &[Volume], path: &Path) -> (BTreeSet<String>, Vec<FieldError>) {
    let mut names = BTreeSet::new();
    let mut errs = Vec::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let mut el = validate_volume_source(vol, &p);
        if vol.name.is_empty() {
            el.push(FieldError::required(&p.child("name"), ""));
        } else {
            el.extend(meta::dns1123_label(&vol.name, &p.child("name")));
        }
        if names.contains(&vol.name) {
            el.push(FieldError::duplicate(&p.child("name"), vol.name.as_str()));
        }
        if el.is_empty() {
            names.insert(vol.name.clone());
        }
        errs.extend(el);
    }
    (names, errs)
}

fn validate_volume_source(vol: &Volume, path: &Path) -> Vec<FieldError> {
    let sources = volume_sources(vol);
    let mut errs = Vec::new();
    if sources.is_empty() {
        return vec![FieldError::required(path, "must specify a volume type")];
    }
    for extra in sources.iter().skip(1) {
        errs.push(FieldError::forbidden(&path.child(extra), "may not specify more than 1 volume type"));
    }
    match sources[0].as_str() {
        "secret" if vol.secret.as_ref().is_some_and(|src| s(&src.secret_name).is_empty()) => {
            errs.push(FieldError::required(&path.child("secret").child("secretName"), ""));
        }
        "configMap" if vol.config_map.as_ref().is_some_and(|src| src.name.is_empty()) => {
            errs.push(FieldError::required(&path.child("configMap").child("name"), ""));
        }
        "hostPath" if vol.host_path.as_ref().is_some_and(|src| src.path.is_empty()) => {
            errs.push(FieldError::required(&path.child("hostPath").child("path"), ""));
        }
        _ => {}
    }
    errs
}

fn validate_container_common(c: &Container, volumes: &BTreeSet<String>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if c.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(meta::dns1123_label(&c.name, &path.child("name")));
    }
    if s(&c.image).is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    errs.extend(enum_value(
        s(&c.termination_message_policy),
        &["File", "FallbackToLogsOnError"],
        &path.child("terminationMessagePolicy"),
    ));
    errs.extend(validate_container_ports(c.ports.as_deref().unwrap_or(&[]), &path.child("ports")));
    errs.extend(validate_env(c.env.as_deref().unwrap_or(&[]), &path.child("env")));
    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let p = path.child("volumeMounts").index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(&p.child("name"), m.name.as_str()));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !mount_paths.insert(m.mount_path.clone()) {
            errs.push(FieldError::invalid(&p.child("mountPath"), m.mount_path.as_str(), "must be unique"));
        }
    }
    errs.extend(enum_value(
        s(&c.image_pull_policy),
        &["Always", "IfNotPresent", "Never"],
        &path.child("imagePullPolicy"),
    ));
    errs
}

fn validate_containers(containers: &[Container], volumes: &BTreeSet<String>, path: &Path) -> Vec<FieldError> {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, volumes, &p));
        if !names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
        }
        for (probe, name) in [
            (&c.liveness_probe, "livenessProbe"),
            (&c.readiness_probe, "readinessProbe"),
            (&c.startup_probe, "startupProbe"),
        ] {
            if let Some(probe) = probe {
                errs.extend(validate_probe(probe, &p.child(name)));
                let threshold = probe.success_threshold.unwrap_or(0);
                if name != "readinessProbe" && threshold != 1 {
                    errs.push(FieldError::invalid(&p.child(name).child("successThreshold"), threshold, "must be 1"));
                }
            }
        }
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(&p.child("restartPolicy"), "may not be set for non-init containers"));
        }
    }
    errs.extend(host_port_conflicts(containers, path));
    errs
}

fn validate_init_containers(spec: &PodSpec, volumes: &BTreeSet<String>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names: BTreeSet<String> = spec.containers.iter().map(|c| c.name.clone()).collect();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(c, volumes, &p));
        if !names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(&p.child("name"), c.name.as_str()));
        }
        match c.restart_policy.as_deref() {
            None => {
                for (probe, name) in [
                    (&c.liveness_probe, "livenessProbe"),
                    (&c.readiness_probe, "readinessProbe"),
                    (&c.startup_probe, "startupProbe"),
                ] {
                    if probe.is_some() {
                        errs.push(FieldError::forbidden(
                            &p.child(name),
                            "may not be set for init containers without restartPolicy=Always",
                        ));
                    }
                }
            }
            Some("Always") => {}
            Some(other) => errs.push(FieldError::not_supported(&p.child("restartPolicy"), other, &["Always"])),
        }
    }
    errs
}

fn validate_probe(probe: &Probe, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let handlers = [probe.exec.is_some(), probe.http_get.is_some(), probe.tcp_socket.is_some(), probe.grpc.is_some()];
    match handlers.iter().filter(|h| **h).count() {
        0 => errs.push(FieldError::required(path, "must specify a handler type")),
        1 => {}
        _ => errs.push(FieldError::forbidden(path, "may not specify more than 1 handler type")),
    }
    if let Some(get) = &probe.http_get {
        errs.extend(super::service::port_num_or_name(&get.port, &path.child("httpGet").child("port")));
    }
    if let Some(tcp) = &probe.tcp_socket {
        errs.extend(super::service::port_num_or_name(&tcp.port, &path.child("tcpSocket").child("port")));
    }
    for (value, name) in [
        (probe.initial_delay_seconds, "initialDelaySeconds"),
        (probe.timeout_seconds, "timeoutSeconds"),
        (probe.period_seconds, "periodSeconds"),
        (probe.success_threshold, "successThreshold"),
        (probe.failure_threshold, "failureThreshold"),
    ] {
        errs.extend(meta::nonnegative(value.unwrap_or(0).into(), &path.child(name)));
    }
    errs
}

fn validate_container_ports(ports: &[ContainerPort], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = s(&port.name);
        if !name.is_empty() {
            let msgs = v::is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(meta::each(&p.child("name"), name, msgs));
            } else if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            errs.extend(meta::each(
                &p.child("containerPort"),
                port.container_port,
                v::is_valid_port_num(port.container_port.into()),
            ));
        }
        let host_port = port.host_port.unwrap_or(0);
        if host_port != 0 {
            errs.extend(meta::each(&p.child("hostPort"), host_port, v::is_valid_port_num(host_port.into())));
        }
        let protocol = s(&port.protocol);
        if protocol.is_empty() {
            errs.push(FieldError::required(&p.child("protocol"), ""));
        } else if !PROTOCOLS.contains(&protocol) {
            errs.push(FieldError::not_supported(&p.child("protocol"), protocol, PROTOCOLS));
        }
    }
    errs
}

/// `checkHostPortConflicts`: a (protocol, hostIP, hostPort) may be used once per pod.
fn host_port_conflicts(containers: &[Container], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", s(&port.protocol), s(&port.host_ip));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(&path.index(i).child("ports").index(j).child("hostPort"), key));
            }
        }
    }
    errs
}

fn host_network_ports(spec: &PodSpec, path: &Path, opts: SpecOptions) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.host_network != Some(true) {
        return errs;
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if (opts.resource_is_pod || hp != 0) && hp != port.container_port {
                errs.push(FieldError::invalid(
                    &path.child("containers").index(i).child("ports").index(j).child("hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

fn validate_env(vars: &[EnvVar], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            errs.extend(meta::each(&p.child("name"), ev.name.as_str(), v::is_env_var_name(&ev.name)));
        }
        let Some(from) = &ev.value_from else { continue };
        let from_path = p.child("valueFrom");
        let sources = [
            from.field_ref.is_some(),
            from.resource_field_ref.is_some(),
            from.config_map_key_ref.is_some(),
            from.secret_key_ref.is_some(),
            from.file_key_ref.is_some(),
        ];
        if let Some(field) = &from.field_ref {
            let fp = from_path.child("fieldRef").child("fieldPath");
            let subscripted = ["metadata.labels[", "metadata.annotations["]
                .iter()
                .any(|prefix| field.field_path.starts_with(prefix) && field.field_path.ends_with(']'));
            if field.field_path.is_empty() {
                errs.push(FieldError::required(&fp, ""));
            } else if !subscripted && !ENV_FIELD_PATHS.contains(&field.field_path.as_str()) {
                errs.push(FieldError::not_supported(&fp, field.field_path.as_str(), ENV_FIELD_PATHS));
            }
        }
        let count = sources.iter().filter(|x| **x).count();
        if count == 0 {
            errs.push(FieldError::invalid(
                &from_path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !s(&ev.value).is_empty() {
            errs.push(FieldError::invalid(&from_path, "", "may not be specified when `value` is not empty"));
        } else if count > 1 {
            errs.push(FieldError::invalid(&from_path, "", "may not have more than one field specified at a time"));
        }
    }
    errs
}

fn validate_dns_config(config: Option<&PodDNSConfig>, policy: &str, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if policy == "None" {
        let Some(config) = config else {
            return vec![FieldError::required(path, "must provide `dnsConfig` when `dnsPolicy` is None")];
        };
        if config.nameservers.as_ref().is_none_or(Vec::is_empty) {
            return vec![FieldError::required(
                &path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let Some(config) = config else { return errs };
    let nameservers = config.nameservers.clone().unwrap_or_default();
    if nameservers.len() > MAX_DNS_NAMESERVERS {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            nameservers.clone(),
            format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        errs.extend(meta::ip(ns, &path.child("nameservers").index(i)));
    }
    let searches = config.searches.clone().unwrap_or_default();
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            searches.clone(),
            format!("must not have more than {MAX_DNS_SEARCH_PATHS} search paths"),
        ));
    }
    if searches.join(" ").len() > MAX_DNS_SEARCH_LIST_CHARS {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            searches.clone(),
            format!(
                "must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list"
            ),
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        if search != "." {
            let search = search.strip_suffix('.').unwrap_or(search);
            errs.extend(meta::each(
                &path.child("searches").index(i),
                search,
                v::is_dns1123_subdomain_with_underscore(search),
            ));
        }
    }
    for (i, opt) in config.options.iter().flatten().enumerate() {
        if s(&opt.name).is_empty() {
            errs.push(FieldError::required(&path.child("options").index(i), "must not be empty"));
        }
    }
    errs
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = s(&t.key);
        let op = s(&t.operator);
        let effect = s(&t.effect);
        if !key.is_empty() {
            errs.extend(meta::validate_label_name(key, &p.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = v::is_valid_label_value(s(&t.value));
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(&p.child("operator"), s(&t.value), msgs.join(";")));
                }
            }
            "Exists" => {
                if !s(&t.value).is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        s(&t.value),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(&p.child("operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("nginx:1.25"), "1.25");
        assert_eq!(image_tag("registry.k8s.io/e2e-test-images/agnhost:2.47"), "2.47");
        assert_eq!(image_tag("localhost:5000/app"), "latest");
        assert_eq!(image_tag("busybox@sha256:abc"), "");
    }
}
