//! API discovery: `/version`, `/api`, `/apis`, `/apis/{group}`, the per group-version
//! `APIResourceList`s and aggregated discovery (`apidiscovery.k8s.io/v2`
//! `APIGroupDiscoveryList`), all derived from [`RESOURCES`](crate::resources::RESOURCES).
//!
//! kubectl (client-go) asks `/api` and `/apis` for aggregated discovery first
//! (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json`)
//! and reads the response's `Content-Type` to know which form it got; [`negotiate`] picks
//! the form and [`DiscoveryForm::content_type`] names it. kube-rs reads the unaggregated
//! forms. Resources are listed in name order, as kube-apiserver lists them, which is also
//! the order `kubectl get all` prints them in.

use serde_json::{json, Map, Value};

use crate::resources::{self, ResourceInfo, RESOURCES, VERBS};

#[cfg(test)]
mod kubectl_tests;

/// The Kubernetes minor version knet speaks.
pub const KUBE_MINOR: &str = "34";

/// `gitVersion` reported by `/version`: a v1.34 patch release, marked as knet.
pub const GIT_VERSION: &str = "v1.34.0-knet";

/// The `Content-Type` of an aggregated discovery (v2) response.
pub const CONTENT_TYPE_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// The `Content-Type` of an aggregated discovery (v2beta1) response.
pub const CONTENT_TYPE_V2BETA1: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
/// The `Content-Type` of the unaggregated forms.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// `GET /version`: a `version.Info`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBE_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": option_env!("KNET_GIT_COMMIT").unwrap_or(""),
        "gitTreeState": "",
        "buildDate": option_env!("KNET_BUILD_DATE").unwrap_or(""),
        "goVersion": "",
        "compiler": "rustc",
        "platform": platform(),
    })
}

/// `os/arch` in Go's spelling (`linux/amd64`).
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("{}/{}", std::env::consts::OS, arch)
}

/// `GET /api`: the core group's `APIVersions`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// The versions served for a named group, preferred first.
fn group_versions(group: &str) -> Vec<&'static str> {
    let mut versions: Vec<&'static str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        if !versions.contains(&r.version) {
            versions.push(r.version);
        }
    }
    versions
}

/// One `APIGroup` (without `kind`/`apiVersion`, as it sits inside an `APIGroupList`).
fn api_group(name: &str) -> Value {
    let versions: Vec<Value> = group_versions(name)
        .into_iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": versions, "preferredVersion": preferred})
}

/// `GET /apis`: the named groups as an `APIGroupList`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = resources::groups().into_iter().map(api_group).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`: one `APIGroup`, or `None` for a group knet does not serve.
pub fn group(name: &str) -> Option<Value> {
    if name.is_empty() || !RESOURCES.iter().any(|r| r.group == name) {
        return None;
    }
    let mut g = api_group(name);
    if let Value::Object(m) = &mut g {
        let mut out = Map::new();
        out.insert("kind".into(), json!("APIGroup"));
        out.insert("apiVersion".into(), json!("v1"));
        out.append(m);
        return Some(Value::Object(out));
    }
    None
}

/// The resources of one group-version, in name order.
fn resources_of(group: &str, version: &str) -> Vec<&'static ResourceInfo> {
    let mut list: Vec<&'static ResourceInfo> =
        RESOURCES.iter().filter(|r| r.group == group && r.version == version).collect();
    list.sort_by_key(|r| r.plural);
    list
}

/// What a subresource answers with and which verbs it takes, as kube-apiserver has them.
struct Subresource {
    name: &'static str,
    /// (group, version, kind) of the object the subresource returns.
    response: (&'static str, &'static str, &'static str),
    verbs: &'static [&'static str],
}

fn subresource(res: &ResourceInfo, name: &'static str) -> Subresource {
    match name {
        "scale" => Subresource { name, response: ("autoscaling", "v1", "Scale"), verbs: &["get", "patch", "update"] },
        "binding" => Subresource { name, response: ("", "v1", "Binding"), verbs: &["create"] },
        "exec" => Subresource { name, response: ("", "v1", "PodExecOptions"), verbs: &["create", "get"] },
        "attach" => Subresource { name, response: ("", "v1", "PodAttachOptions"), verbs: &["create", "get"] },
        "portforward" => Subresource { name, response: ("", "v1", "PodPortForwardOptions"), verbs: &["create", "get"] },
        "log" => Subresource { name, response: (res.group, res.version, res.kind), verbs: &["get"] },
        "token" => Subresource { name, response: ("authentication.k8s.io", "v1", "TokenRequest"), verbs: &["create"] },
        "finalize" => Subresource { name, response: (res.group, res.version, res.kind), verbs: &["update"] },
        // `status` and anything else reads and writes the object itself.
        _ => Subresource { name, response: (res.group, res.version, res.kind), verbs: &["get", "patch", "update"] },
    }
}

/// `metav1.APIResource` entries for a resource and its subresources.
fn api_resources(res: &ResourceInfo) -> Vec<Value> {
    let mut out = Vec::new();
    let mut main = json!({
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": VERBS,
    });
    if let Value::Object(m) = &mut main {
        if !res.short_names.is_empty() {
            m.insert("shortNames".into(), json!(res.short_names));
        }
        if !res.categories.is_empty() {
            m.insert("categories".into(), json!(res.categories));
        }
    }
    out.push(main);
    let mut subs: Vec<&'static str> = res.subresources.to_vec();
    subs.sort_unstable();
    for name in subs {
        let sub = subresource(res, name);
        let (group, version, kind) = sub.response;
        let mut entry = json!({
            "name": format!("{}/{}", res.plural, sub.name),
            "singularName": "",
            "namespaced": res.namespaced,
            "kind": kind,
            "verbs": sub.verbs,
        });
        if (group, version) != (res.group, res.version) {
            if let Value::Object(m) = &mut entry {
                m.insert("group".into(), json!(group));
                m.insert("version".into(), json!(version));
            }
        }
        out.push(entry);
    }
    out
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`: an `APIResourceList`, or `None` for a
/// group-version knet does not serve. The core group is `""`.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let list = resources_of(group, version);
    if list.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let resources: Vec<Value> = list.into_iter().flat_map(api_resources).collect();
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// One `APIResourceDiscovery`.
fn resource_discovery(res: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), json!(res.plural));
    m.insert("responseKind".into(), gvk(res.group, res.version, res.kind));
    m.insert("scope".into(), json!(if res.namespaced { "Namespaced" } else { "Cluster" }));
    m.insert("singularResource".into(), json!(res.singular));
    m.insert("verbs".into(), json!(VERBS));
    if !res.short_names.is_empty() {
        m.insert("shortNames".into(), json!(res.short_names));
    }
    if !res.categories.is_empty() {
        m.insert("categories".into(), json!(res.categories));
    }
    let mut subs: Vec<&'static str> = res.subresources.to_vec();
    subs.sort_unstable();
    let subs: Vec<Value> = subs
        .into_iter()
        .map(|name| {
            let sub = subresource(res, name);
            let (g, v, k) = sub.response;
            json!({"subresource": sub.name, "responseKind": gvk(g, v, k), "verbs": sub.verbs})
        })
        .collect();
    if !subs.is_empty() {
        m.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(m)
}

/// One `APIGroupDiscovery` for a group (`""` for core).
fn group_discovery(group: &str) -> Value {
    let versions: Vec<Value> = group_versions(group)
        .into_iter()
        .map(|v| {
            let resources: Vec<Value> = resources_of(group, v).into_iter().map(resource_discovery).collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if group.is_empty() { json!({}) } else { json!({"name": group}) };
    json!({"metadata": metadata, "versions": versions})
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`) for `GET /api`
/// (`core = true`) or `GET /apis` (`core = false`).
pub fn aggregated(core: bool) -> Value {
    aggregated_as(core, DiscoveryForm::AggregatedV2)
}

/// Aggregated discovery in the given form's `apiVersion`; the unaggregated form gets v2.
pub fn aggregated_as(core: bool, form: DiscoveryForm) -> Value {
    let items: Vec<Value> =
        if core { vec![group_discovery("")] } else { resources::groups().into_iter().map(group_discovery).collect() };
    let api_version = match form {
        DiscoveryForm::AggregatedV2Beta1 => "apidiscovery.k8s.io/v2beta1",
        _ => "apidiscovery.k8s.io/v2",
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}

/// Which discovery document a client asked for with its `Accept` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryForm {
    /// `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`.
    AggregatedV2,
    /// `apidiscovery.k8s.io/v2beta1` `APIGroupDiscoveryList`.
    AggregatedV2Beta1,
    /// `APIVersions` / `APIGroupList`.
    Unaggregated,
}

impl DiscoveryForm {
    /// The response `Content-Type` that names this form.
    pub fn content_type(self) -> &'static str {
        match self {
            DiscoveryForm::AggregatedV2 => CONTENT_TYPE_V2,
            DiscoveryForm::AggregatedV2Beta1 => CONTENT_TYPE_V2BETA1,
            DiscoveryForm::Unaggregated => CONTENT_TYPE_JSON,
        }
    }
}

/// Picks the discovery form for an `Accept` header: the client's most preferred media
/// range knet can serve (q-values respected, ties in header order). A missing or empty
/// header means the unaggregated form; `None` means nothing acceptable (answer 406).
pub fn negotiate(accept: Option<&str>) -> Option<DiscoveryForm> {
    let accept = match accept.map(str::trim) {
        None | Some("") => return Some(DiscoveryForm::Unaggregated),
        Some(a) => a,
    };
    let mut best: Option<(f32, DiscoveryForm)> = None;
    for range in accept.split(',') {
        let Some((form, q)) = media_range_form(range) else { continue };
        if q <= 0.0 {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, form));
        }
    }
    best.map(|(_, form)| form)
}

/// The form one media range selects, and its quality.
fn media_range_form(range: &str) -> Option<(DiscoveryForm, f32)> {
    let mut parts = range.split(';').map(str::trim);
    let base = parts.next()?.to_ascii_lowercase();
    let mut q = 1.0f32;
    let (mut g, mut v, mut as_) = (None, None, None);
    for p in parts {
        let Some((k, val)) = p.split_once('=') else { continue };
        let val = val.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "q" => q = val.parse().unwrap_or(0.0),
            "g" => g = Some(val.to_string()),
            "v" => v = Some(val.to_string()),
            "as" => as_ = Some(val.to_string()),
            _ => {}
        }
    }
    let form = match (base.as_str(), g.as_deref(), v.as_deref(), as_.as_deref()) {
        ("application/json", Some("apidiscovery.k8s.io"), Some("v2"), Some("APIGroupDiscoveryList")) => {
            DiscoveryForm::AggregatedV2
        }
        ("application/json", Some("apidiscovery.k8s.io"), Some("v2beta1"), Some("APIGroupDiscoveryList")) => {
            DiscoveryForm::AggregatedV2Beta1
        }
        // A `g`/`v`/`as` knet does not know: this range asks for something else.
        (_, Some(_), _, _) | (_, _, Some(_), _) | (_, _, _, Some(_)) => return None,
        ("application/json" | "application/*" | "*/*", None, None, None) => DiscoveryForm::Unaggregated,
        _ => return None,
    };
    Some((form, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(list: &'a [Value], key: &str, name: &str) -> &'a Value {
        list.iter().find(|r| r[key] == name).unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn kubectl_accept_header_gets_aggregated_v2() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(kubectl)), Some(DiscoveryForm::AggregatedV2));
        let nopeer =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;profile=nopeer,application/json";
        assert_eq!(negotiate(Some(nopeer)), Some(DiscoveryForm::AggregatedV2));
        assert_eq!(
            negotiate(Some("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList")),
            Some(DiscoveryForm::AggregatedV2Beta1)
        );
    }

    #[test]
    fn plain_clients_get_unaggregated() {
        assert_eq!(negotiate(None), Some(DiscoveryForm::Unaggregated));
        assert_eq!(negotiate(Some("application/json")), Some(DiscoveryForm::Unaggregated));
        assert_eq!(negotiate(Some("*/*")), Some(DiscoveryForm::Unaggregated));
        assert_eq!(negotiate(Some("application/json, */*")), Some(DiscoveryForm::Unaggregated));
        assert_eq!(negotiate(Some("application/yaml")), None);
        assert_eq!(negotiate(Some("application/json;g=other.io;v=v1;as=Thing")), None);
    }

    #[test]
    fn quality_values_order_preferences() {
        let accept =
            "application/json;q=0.9,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.5";
        assert_eq!(negotiate(Some(accept)), Some(DiscoveryForm::Unaggregated));
        let accept = "application/json;q=0,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.1";
        assert_eq!(negotiate(Some(accept)), Some(DiscoveryForm::AggregatedV2));
    }

    #[test]
    fn core_resource_list_has_names_verbs_and_subresources() {
        let list = resource_list("", "v1").expect("core v1 served");
        assert_eq!(list["groupVersion"], "v1");
        let rs = list["resources"].as_array().expect("resources");
        let names: Vec<&str> = rs.iter().filter_map(|r| r["name"].as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "kube lists resources in name order");
        let pods = find(rs, "name", "pods");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["verbs"], json!(VERBS));
        let binding = find(rs, "name", "pods/binding");
        assert_eq!(binding["kind"], "Binding");
        assert_eq!(binding["verbs"], json!(["create"]));
        let scale = find(rs, "name", "replicationcontrollers/scale");
        assert_eq!(
            (&scale["group"], &scale["version"], &scale["kind"]),
            (&json!("autoscaling"), &json!("v1"), &json!("Scale"))
        );
        let ns = find(rs, "name", "namespaces");
        assert_eq!(ns["namespaced"], false);
        assert!(find(rs, "name", "services").get("categories").is_some());
        assert!(find(rs, "name", "endpoints").get("categories").is_none());
        assert_eq!(find(rs, "name", "namespaces/finalize")["verbs"], json!(["update"]));
    }

    #[test]
    fn named_groups_are_listed_with_preferred_versions() {
        let list = group_list();
        let groups = list["groups"].as_array().expect("groups");
        let apps = find(groups, "name", "apps");
        assert_eq!(apps["preferredVersion"], json!({"groupVersion": "apps/v1", "version": "v1"}));
        for g in ["discovery.k8s.io", "networking.k8s.io", "coordination.k8s.io"] {
            find(groups, "name", g);
        }
        assert!(groups.iter().all(|g| g["name"] != ""));
        let one = group("networking.k8s.io").expect("served");
        assert_eq!(one["kind"], "APIGroup");
        assert_eq!(one["versions"][0]["groupVersion"], "networking.k8s.io/v1");
        assert!(group("batch").is_none());
        assert!(group("").is_none());
        assert!(resource_list("apps", "v1beta1").is_none());
        assert!(resource_list("apps", "v1").is_some());
    }

    #[test]
    fn aggregated_discovery_describes_every_resource() {
        let core = aggregated(true);
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = core["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        let v1 = &items[0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let rs = v1["resources"].as_array().expect("resources");
        let svc = find(rs, "resource", "services");
        assert_eq!(svc["shortNames"], json!(["svc"]));
        assert_eq!(svc["categories"], json!(["all"]));
        assert_eq!(svc["scope"], "Namespaced");
        assert_eq!(svc["singularResource"], "service");
        assert_eq!(svc["responseKind"], json!({"group": "", "version": "v1", "kind": "Service"}));
        assert_eq!(svc["subresources"][0]["subresource"], "status");
        let pods = find(rs, "resource", "pods");
        let binding = find(pods["subresources"].as_array().expect("subs"), "subresource", "binding");
        assert_eq!(binding["responseKind"]["kind"], "Binding");
        let rc = find(rs, "resource", "replicationcontrollers");
        let scale = find(rc["subresources"].as_array().expect("subs"), "subresource", "scale");
        assert_eq!(scale["responseKind"], json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}));
        assert_eq!(find(rs, "resource", "nodes")["scope"], "Cluster");

        let apis = aggregated(false);
        let items = apis["items"].as_array().expect("items");
        let apps = items.iter().find(|i| i["metadata"]["name"] == "apps").expect("apps");
        let deploy = find(apps["versions"][0]["resources"].as_array().expect("rs"), "resource", "deployments");
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        assert!(items.iter().all(|i| i["metadata"]["name"] != ""));
        assert_eq!(aggregated_as(false, DiscoveryForm::AggregatedV2Beta1)["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    }

    #[test]
    fn every_short_name_is_discoverable() {
        let mut seen = Vec::new();
        for core in [true, false] {
            for item in aggregated(core)["items"].as_array().into_iter().flatten() {
                for v in item["versions"].as_array().into_iter().flatten() {
                    for r in v["resources"].as_array().into_iter().flatten() {
                        for s in r["shortNames"].as_array().into_iter().flatten() {
                            seen.push(s.as_str().unwrap_or_default().to_string());
                        }
                    }
                }
            }
        }
        for short in ["svc", "ep", "po", "no", "ns", "deploy", "rs", "rc", "netpol", "ing", "cm"] {
            assert!(seen.iter().any(|s| s == short), "{short} not discoverable");
        }
    }

    #[test]
    fn unaggregated_documents_decode_as_kubernetes_types() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroup, APIGroupList, APIResourceList, APIVersions};
        let _: APIVersions = serde_json::from_value(core_versions("127.0.0.1:6443")).expect("APIVersions");
        let groups: APIGroupList = serde_json::from_value(group_list()).expect("APIGroupList");
        assert_eq!(groups.groups.len(), resources::groups().len());
        for g in resources::groups() {
            let group: APIGroup = serde_json::from_value(group(g).unwrap_or_default()).expect("APIGroup");
            for v in group.versions {
                let (gname, version) = v.group_version.split_once('/').unwrap_or_default();
                let list: APIResourceList =
                    serde_json::from_value(resource_list(gname, version).unwrap_or_default()).expect("APIResourceList");
                assert!(!list.resources.is_empty());
            }
        }
        let core: APIResourceList = serde_json::from_value(resource_list("", "v1").unwrap_or_default()).expect("core");
        assert!(core.resources.iter().any(|r| r.name == "services" && r.short_names == Some(vec!["svc".into()])));
    }

    #[test]
    fn version_reports_kubernetes_1_34() {
        let v = version_info();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "34");
        assert!(v["gitVersion"].as_str().is_some_and(|s| s.starts_with("v1.34.")));
        assert!(v["platform"].as_str().is_some_and(|s| s.contains('/')));
        assert_eq!(core_versions("10.0.0.1:6443")["serverAddressByClientCIDRs"][0]["serverAddress"], "10.0.0.1:6443");
    }
}
