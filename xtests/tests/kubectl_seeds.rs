//! The seed tutorials through the real kubectl v1.34, default flags, against a fresh `knet-apiserver`: the
//! manifests of `testdata/seeds/` applied, edited and re-applied, read back with `get` (plain, wide, YAML,
//! JSON, jsonpath), `describe`, `get ep`, `get all`, changed with `label`, `scale`, `expose`, `delete`,
//! followed with `get -w` and `wait --for=delete`, explained with `explain`; and the seeds' validation rules
//! answered with kube-apiserver's own words, as kubectl prints them.
//!
//! There are no controllers or node agents yet: Deployments make no pods, pods stay Pending, nothing writes
//! EndpointSlices. The tests only rely on what the API server itself does.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use xtests::{ApiServer, Kubectl, KubectlOutput};

/// How long a `get -w` or `wait` may take to print what the test waits for.
const STREAM_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

/// The path of a seed manifest in `testdata/seeds/`.
fn seed(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/seeds").join(file)
}

/// The text of a seed manifest, to edit before applying.
fn seed_text(file: &str) -> Result<String> {
    let path = seed(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// Runs kubectl and returns its stdout; an error (with everything it printed) if it failed.
fn ok(k: &Kubectl, args: &[&str]) -> Result<String> {
    Ok(k.run(args)?.ok()?.stdout)
}

/// `kubectl apply [-n NS] -f <seed>`, checked to print exactly `expected` (one line per object).
fn apply_seed(k: &Kubectl, ns: Option<&str>, file: &str, expected: &str) -> Result<()> {
    let path = seed(file);
    let path = path.to_str().context("non-UTF-8 path")?;
    let mut args = vec!["apply", "-f", path];
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    let out = ok(k, &args)?;
    ensure!(out.trim_end() == expected, "kubectl apply -f {file}: expected {expected:?}, got {out:?}");
    Ok(())
}

/// Creates a namespace with `kubectl apply` (`kubectl create namespace` sends protobuf, see
/// `kubectl_create_generators_work`).
fn namespace(k: &Kubectl, name: &str) -> Result<()> {
    let out = k.apply_yaml(&format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"))?.ok()?;
    ensure!(out.stdout.trim() == format!("namespace/{name} created"), "{}", out.stdout);
    Ok(())
}

/// kubectl's failure output, checked to be a failure.
fn failure(out: KubectlOutput) -> Result<String> {
    ensure!(!out.success(), "kubectl {} succeeded: {}", out.args.join(" "), out.stdout);
    Ok(out.stderr)
}

/// `kubectl get ... -o json` parsed.
fn get_json(k: &Kubectl, args: &[&str]) -> Result<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json"]);
    let out = ok(k, &all)?;
    serde_json::from_str(&out).with_context(|| format!("kubectl {} printed no JSON: {out}", all.join(" ")))
}

/// A table printed by `kubectl get`: cells are cut at the header's column starts, as kubectl's tabwriter
/// aligns them (header names may contain one space, as `NOMINATED NODE`; columns are 3 spaces apart).
#[derive(Debug)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn parse(text: &str) -> Result<Table> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next().context("kubectl printed no table")?;
        let mut starts = Vec::new();
        let mut columns = Vec::new();
        let bytes = header.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b' ' {
                i += 1;
                continue;
            }
            let start = i;
            // A column name ends at two spaces in a row (or the end of the line).
            while i < bytes.len() && !(bytes[i] == b' ' && bytes.get(i + 1).is_none_or(|b| *b == b' ')) {
                i += 1;
            }
            starts.push(start);
            columns.push(header[start..i].to_string());
        }
        let rows = lines
            .map(|line| {
                (0..starts.len())
                    .map(|c| {
                        let from = starts[c].min(line.len());
                        let to = starts.get(c + 1).map_or(line.len(), |e| (*e).min(line.len()));
                        line[from..to].trim().to_string()
                    })
                    .collect()
            })
            .collect();
        Ok(Table { columns, rows })
    }

    /// The row whose first cell is `name`, as column → cell.
    fn row(&self, name: &str) -> Result<BTreeMap<&str, &str>> {
        let row = self
            .rows
            .iter()
            .find(|r| r.first().is_some_and(|c| c == name))
            .with_context(|| format!("no row {name:?} in {self:?}"))?;
        Ok(self.columns.iter().map(String::as_str).zip(row.iter().map(String::as_str)).collect())
    }

    fn names(&self) -> Vec<&str> {
        self.rows.iter().filter_map(|r| r.first()).map(String::as_str).collect()
    }
}

/// `kubectl get <args>` as a table.
fn get_table(k: &Kubectl, args: &[&str]) -> Result<Table> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    Table::parse(&ok(k, &all)?)
}

/// The values of the `Key:   value` lines of `kubectl describe` output, in order.
fn described<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}:");
    text.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).map(str::trim).collect()
}

/// Whether `ip` is in knet's default Service CIDR, 10.96.0.0/16.
fn in_service_cidr(ip: &str) -> bool {
    ip.parse::<Ipv4Addr>().is_ok_and(|a| a.octets()[..2] == [10, 96])
}

// ---------------------------------------------------------------------------------------------------------
// apply -f of every seed manifest, and re-apply unchanged
// ---------------------------------------------------------------------------------------------------------

/// Each seed manifest that is valid as written, the namespace it goes to (several share a name, so most get
/// their own; `None` = the one in the manifest) and what `kubectl apply` prints for it.
const VALID_SEEDS: &[(&str, Option<&str>, &str)] = &[
    ("service-selector.yaml", Some("svc-selector"), "service/my-service created"),
    ("service-multi-port.yaml", Some("svc-multi-port"), "service/my-service created"),
    ("service-custom-cluster-ip.yaml", Some("svc-custom-ip"), "service/my-service created"),
    ("service-session-affinity.yaml", Some("svc-affinity"), "service/my-service created"),
    ("service-external-ips.yaml", Some("svc-external-ips"), "service/my-service created"),
    ("service-external-name.yaml", None, "service/my-service created"),
    ("service-without-selector.yaml", Some("manual-ep"), "service/my-service created"),
    ("endpoints-manual.yaml", Some("manual-ep"), "endpoints/my-service created"),
    ("service-headless-default-subdomain.yaml", Some("pods"), "service/default-subdomain created"),
    ("pod-busybox1-hostname-subdomain.yaml", Some("pods"), "pod/busybox1 created"),
    ("pod-busybox2-hostname-subdomain.yaml", Some("pods"), "pod/busybox2 created"),
    ("pod-curlpod.yaml", Some("pods"), "pod/curlpod created"),
    ("pod-host-aliases.yaml", Some("pods"), "pod/hostaliases-pod created"),
    ("pod-busybox-host-network.yaml", None, "pod/busybox created"),
    ("pod-dns-config.yaml", None, "pod/dns-example created"),
    ("deployment-my-nginx.yaml", Some("nginx"), "deployment.apps/my-nginx created"),
    ("service-my-nginx.yaml", Some("nginx"), "service/my-nginx created"),
    ("replicationcontroller-my-nginx.yaml", Some("nginx"), "replicationcontroller/my-nginx created"),
    ("service-nginxsvc.yaml", Some("nginx"), "service/nginxsvc created"),
    ("service-nodeport-nginx-service.yaml", Some("nginx"), "service/nginx-service created"),
    ("service-sleep-2.yaml", Some("numbers"), "service/sleep-2 created"),
    ("service-cluster-ip-numbers-api.yaml", Some("numbers"), "service/numbers-api created"),
    ("service-loadbalancer-numbers-web.yaml", Some("numbers"), "service/numbers-web created"),
    ("service-nodeport-numbers-web-node.yaml", Some("numbers"), "service/numbers-web-node created"),
    ("service-external-name-numbers-api.yaml", Some("numbers-external"), "service/numbers-api created"),
    ("service-without-selector-numbers-api.yaml", Some("numbers-headless"), "service/numbers-api created"),
    ("endpoints-manual-numbers-api.yaml", Some("numbers-headless"), "endpoints/numbers-api created"),
    ("networkpolicy-test-network-policy.yaml", None, "networkpolicy.networking.k8s.io/test-network-policy created"),
    ("networkpolicy-access-nginx.yaml", Some("nginx"), "networkpolicy.networking.k8s.io/access-nginx created"),
    ("networkpolicy-default-deny-ingress.yaml", Some("np-1"), "networkpolicy.networking.k8s.io/default-deny created"),
    ("networkpolicy-allow-all-ingress.yaml", Some("np-1"), "networkpolicy.networking.k8s.io/allow-all created"),
    ("networkpolicy-default-deny-all.yaml", Some("np-2"), "networkpolicy.networking.k8s.io/default-deny created"),
    ("networkpolicy-allow-all-egress.yaml", Some("np-2"), "networkpolicy.networking.k8s.io/allow-all created"),
    (
        "networkpolicy-namespace-and-pod-selector.yaml",
        Some("np-1"),
        "networkpolicy.networking.k8s.io/alice-client-and created",
    ),
    (
        "networkpolicy-namespace-or-pod-selector.yaml",
        Some("np-1"),
        "networkpolicy.networking.k8s.io/alice-client-or created",
    ),
];

/// Creates the namespaces [`VALID_SEEDS`] use and applies every manifest.
fn apply_all_seeds(k: &Kubectl) -> Result<()> {
    let mut made = vec!["default".to_string()];
    for (_, ns, _) in VALID_SEEDS {
        let ns = ns.unwrap_or("prod");
        if !made.iter().any(|m| m == ns) {
            namespace(k, ns)?;
            made.push(ns.to_string());
        }
    }
    for (file, ns, expected) in VALID_SEEDS {
        apply_seed(k, *ns, file, expected)?;
    }
    Ok(())
}

#[tokio::test]
async fn apply_creates_every_seed_manifest_and_reapply_is_unchanged() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    apply_all_seeds(&k)?;

    // Every object is there, under the name and namespace it was applied with.
    for (file, ns, expected) in VALID_SEEDS {
        let object = expected.trim_end_matches(" created");
        let mut args = vec!["get", object, "-o", "name"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        } else if *file == "service-external-name.yaml" {
            args.extend(["-n", "prod"]);
        }
        assert_eq!(ok(&k, &args)?.trim(), object, "{file}");
    }

    // Re-applying what is already there changes nothing. Endpoints are the exception in kubectl's eyes:
    // `subsets` is an atomic list and the stored one has the defaulted `protocol: TCP`, so kubectl sends the
    // list again and says "configured", as against any cluster; the server sees a no-op and writes nothing.
    let endpoints_rv =
        || ok(&k, &["get", "ep", "my-service", "-n", "manual-ep", "-o", "jsonpath={.metadata.resourceVersion}"]);
    let rv_before = endpoints_rv()?;
    for (file, ns, expected) in VALID_SEEDS {
        let again = if file.starts_with("endpoints-") { " configured" } else { " unchanged" };
        apply_seed(&k, *ns, file, &expected.replace(" created", again))?;
    }
    assert_eq!(endpoints_rv()?, rv_before, "a no-op patch must not write a new resourceVersion");

    // The LoadBalancer example of 001 asks for a clusterIP outside the Service CIDR: kube-apiserver's words.
    let path = seed("service-loadbalancer-status.yaml");
    let err = failure(k.run(&["apply", "-f", path.to_str().context("path")?])?)?;
    assert_eq!(
        err.trim_end(),
        "The Service \"my-service\" is invalid: spec.clusterIPs: Invalid value: [\"10.0.171.239\"]: failed \
         to allocate IP 10.0.171.239: the provided IP (10.0.171.239) is not in the valid range. The range of valid \
         IPs is 10.96.0.0/16"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Services: get, get -o wide / yaml / json / jsonpath, describe
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn services_read_back_with_get_wide_yaml_json_and_jsonpath() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    apply_all_seeds(&k)?;

    // The plain columns, as the seed shows them for `kubectl get svc my-nginx`.
    let plain = get_table(&k, &["svc", "-n", "nginx"])?;
    assert_eq!(plain.columns, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]);
    let my_nginx = plain.row("my-nginx")?;
    assert_eq!(my_nginx["TYPE"], "ClusterIP");
    assert!(in_service_cidr(my_nginx["CLUSTER-IP"]), "{my_nginx:?}");
    assert_eq!((my_nginx["EXTERNAL-IP"], my_nginx["PORT(S)"]), ("<none>", "80/TCP"));

    // -o wide adds SELECTOR; one row per kind of Service in the seeds.
    let wide = |ns: &str, name: &str| -> Result<BTreeMap<String, String>> {
        let t = get_table(&k, &["svc", "-o", "wide", "-n", ns])?;
        assert_eq!(t.columns, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]);
        Ok(t.row(name)?.into_iter().map(|(c, v)| (c.to_string(), v.to_string())).collect())
    };
    let row = wide("svc-selector", "my-service")?;
    assert_eq!((row["TYPE"].as_str(), row["PORT(S)"].as_str()), ("ClusterIP", "80/TCP"));
    assert_eq!((row["EXTERNAL-IP"].as_str(), row["SELECTOR"].as_str()), ("<none>", "app=MyApp"));
    assert!(in_service_cidr(&row["CLUSTER-IP"]), "{row:?}");
    assert_eq!(wide("svc-multi-port", "my-service")?["PORT(S)"], "80/TCP,443/TCP");
    assert_eq!(wide("svc-custom-ip", "my-service")?["CLUSTER-IP"], "10.96.100.100");
    assert_eq!(wide("svc-external-ips", "my-service")?["EXTERNAL-IP"], "80.11.12.10");
    let row = wide("prod", "my-service")?;
    assert_eq!(
        [&row["TYPE"], &row["CLUSTER-IP"], &row["EXTERNAL-IP"], &row["PORT(S)"], &row["SELECTOR"]],
        ["ExternalName", "<none>", "my.database.example.com", "<none>", "<none>"]
    );
    let row = wide("pods", "default-subdomain")?;
    assert_eq!(
        [&row["TYPE"], &row["CLUSTER-IP"], &row["PORT(S)"], &row["SELECTOR"]],
        ["ClusterIP", "None", "1234/TCP", "name=busybox"]
    );
    let row = wide("nginx", "nginx-service")?;
    assert_eq!([&row["TYPE"], &row["PORT(S)"], &row["SELECTOR"]], ["NodePort", "80:32600/TCP", "app=nginx"]);
    assert_eq!(wide("numbers", "numbers-web-node")?["PORT(S)"], "8080:30080/TCP");
    let row = wide("numbers", "numbers-web")?;
    assert_eq!((row["TYPE"].as_str(), row["EXTERNAL-IP"].as_str()), ("LoadBalancer", "<pending>"));
    let node_port: u16 = row["PORT(S)"]
        .strip_prefix("8080:")
        .and_then(|p| p.strip_suffix("/TCP"))
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("PORT(S) of a LoadBalancer: {row:?}"))?;
    assert!((30000..=32767).contains(&node_port), "{row:?}");
    assert_eq!(wide("manual-ep", "my-service")?["SELECTOR"], "<none>");

    // -o yaml: the server's defaults are there, as kube-apiserver writes them.
    let yaml = ok(&k, &["get", "svc", "my-service", "-n", "svc-selector", "-o", "yaml"])?;
    let svc: Value = serde_yaml::from_str(&yaml).context("kubectl get -o yaml printed no YAML")?;
    assert_eq!((svc["apiVersion"].as_str(), svc["kind"].as_str()), (Some("v1"), Some("Service")));
    assert_eq!(svc["metadata"]["namespace"], "svc-selector");
    assert!(svc["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36), "{yaml}");
    assert!(svc["metadata"]["resourceVersion"].as_str().is_some_and(|rv| rv.parse::<u64>().is_ok()), "{yaml}");
    assert!(svc["metadata"]["creationTimestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{yaml}");
    let spec = &svc["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["ports"], json!([{"port": 80, "protocol": "TCP", "targetPort": 9376}]));
    assert_eq!(spec["clusterIPs"], json!([spec["clusterIP"]]));
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["selector"], json!({"app": "MyApp"}));
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));

    // -o json: targetPort defaults to port, protocol to TCP; ClientIP affinity gets the 3-hour timeout.
    let nginxsvc = get_json(&k, &["svc", "nginxsvc", "-n", "nginx"])?;
    assert_eq!(nginxsvc["spec"]["ports"], json!([{"port": 80, "protocol": "TCP", "targetPort": 80}]));
    assert_eq!(nginxsvc["metadata"]["labels"], json!({"app": "nginx"}));
    let affinity = get_json(&k, &["svc", "my-service", "-n", "svc-affinity"])?;
    assert_eq!(affinity["spec"]["sessionAffinity"], "ClientIP");
    assert_eq!(affinity["spec"]["sessionAffinityConfig"], json!({"clientIP": {"timeoutSeconds": 10800}}));
    let external = get_json(&k, &["svc", "my-service", "-n", "prod"])?;
    assert_eq!(external["spec"]["externalName"], "my.database.example.com");
    assert!(external["spec"].get("clusterIP").is_none(), "an ExternalName Service has no clusterIP: {external}");
    let headless = get_json(&k, &["svc", "default-subdomain", "-n", "pods"])?;
    assert_eq!((&headless["spec"]["clusterIP"], &headless["spec"]["clusterIPs"]), (&json!("None"), &json!(["None"])));
    let list = get_json(&k, &["svc", "-n", "numbers"])?;
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(4), "{list}");

    // -o jsonpath, as the seeds use it.
    let ip = ok(&k, &["get", "svc", "my-service", "-n", "svc-custom-ip", "-o", "jsonpath={.spec.clusterIP}"])?;
    assert_eq!(ip, "10.96.100.100");
    let node_ports = ok(
        &k,
        &[
            "get",
            "svc",
            "-n",
            "numbers",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.spec.ports[0].nodePort};{end}",
        ],
    )?;
    let node_ports: BTreeMap<&str, &str> = node_ports.split(';').filter_map(|p| p.split_once('=')).collect();
    assert_eq!(node_ports["numbers-web-node"], "30080");
    assert_eq!(node_ports["numbers-web"], node_port.to_string());
    assert_eq!((node_ports["numbers-api"], node_ports["sleep-2"]), ("", ""));
    // 004's command for the LoadBalancer's address: nothing assigns one yet, so the template prints around it.
    let url = ok(
        &k,
        &[
            "get",
            "svc",
            "numbers-web",
            "-n",
            "numbers",
            "-o",
            "jsonpath=http://{.status.loadBalancer.ingress[0].*}:8080",
        ],
    )?;
    assert_eq!(url, "http://:8080");
    Ok(())
}

#[tokio::test]
async fn describe_svc_shows_selector_type_ips_ports_and_endpoints() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    apply_all_seeds(&k)?;

    let ip = ok(&k, &["get", "svc", "my-service", "-n", "svc-multi-port", "-o", "jsonpath={.spec.clusterIP}"])?;
    let text = ok(&k, &["describe", "svc", "my-service", "-n", "svc-multi-port"])?;
    assert_eq!(described(&text, "Name"), ["my-service"]);
    assert_eq!(described(&text, "Namespace"), ["svc-multi-port"]);
    assert_eq!(described(&text, "Labels"), ["<none>"]);
    assert_eq!(described(&text, "Selector"), ["app=MyApp"]);
    assert_eq!(described(&text, "Type"), ["ClusterIP"]);
    assert_eq!(described(&text, "IP Family Policy"), ["SingleStack"]);
    assert_eq!(described(&text, "IP Families"), ["IPv4"]);
    assert_eq!(described(&text, "IP"), [ip.as_str()]);
    assert_eq!(described(&text, "IPs"), [ip.as_str()]);
    assert_eq!(described(&text, "Port"), ["http  80/TCP", "https  443/TCP"]);
    assert_eq!(described(&text, "TargetPort"), ["9376/TCP", "9377/TCP"]);
    assert_eq!(described(&text, "Endpoints"), ["<none>", "<none>"]);
    assert_eq!(described(&text, "Session Affinity"), ["None"]);
    assert_eq!(described(&text, "Internal Traffic Policy"), ["Cluster"]);
    assert_eq!(described(&text, "Events"), ["<none>"]);

    // The seed's my-nginx Service: labels, an unnamed port.
    let text = ok(&k, &["describe", "svc", "my-nginx", "-n", "nginx"])?;
    assert_eq!(described(&text, "Labels"), ["run=my-nginx"]);
    assert_eq!(described(&text, "Selector"), ["run=my-nginx"]);
    assert_eq!(described(&text, "Port"), ["<unset>  80/TCP"]);
    assert_eq!(described(&text, "TargetPort"), ["80/TCP"]);

    // NodePort and ClientIP affinity.
    let text = ok(&k, &["describe", "svc", "nginx-service", "-n", "nginx"])?;
    assert_eq!(described(&text, "Type"), ["NodePort"]);
    assert_eq!(described(&text, "NodePort"), ["nginx-port  32600/TCP"]);
    assert_eq!(described(&text, "External Traffic Policy"), ["Cluster"]);
    let text = ok(&k, &["describe", "svc", "my-service", "-n", "svc-affinity"])?;
    assert_eq!(described(&text, "Session Affinity"), ["ClientIP"]);
    let text = ok(&k, &["describe", "svc", "my-service", "-n", "prod"])?;
    assert_eq!(described(&text, "Type"), ["ExternalName"]);
    assert_eq!(described(&text, "External Name"), ["my.database.example.com"]);

    // kubectl describe reads a Service's endpoints from its EndpointSlices. For the selectorless Service
    // with manual Endpoints, that slice is written by the EndpointSlice mirroring controller (another
    // issue): until it exists describe shows none, then the manual address.
    let text = ok(&k, &["describe", "svc", "my-service", "-n", "manual-ep"])?;
    assert_eq!(described(&text, "Selector"), ["<none>"]);
    assert_eq!(described(&text, "Endpoints"), ["<none>"]);
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: my-service-mirrored\n  \
                 namespace: manual-ep\n  labels:\n    kubernetes.io/service-name: my-service\n    \
                 endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io\naddressType: \
                 IPv4\nendpoints:\n- addresses: [\"192.0.2.42\"]\nports:\n- port: 9376\n  protocol: TCP\n  name: \"\"\n";
    let out = k.apply_yaml(slice)?.ok()?;
    assert_eq!(out.stdout.trim(), "endpointslice.discovery.k8s.io/my-service-mirrored created");
    let text = ok(&k, &["describe", "svc", "my-service", "-n", "manual-ep"])?;
    assert_eq!(described(&text, "Port"), ["<unset>  80/TCP"]);
    assert_eq!(described(&text, "TargetPort"), ["9376/TCP"]);
    assert_eq!(described(&text, "Endpoints"), ["192.0.2.42:9376"]);
    Ok(())
}

#[tokio::test]
async fn get_ep_shows_the_manual_endpoints() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    apply_all_seeds(&k)?;

    let t = get_table(&k, &["ep", "-n", "manual-ep"])?;
    assert_eq!(t.columns, ["NAME", "ENDPOINTS", "AGE"]);
    assert_eq!(t.row("my-service")?["ENDPOINTS"], "192.0.2.42:9376");
    let t = get_table(&k, &["endpoints", "numbers-api", "-n", "numbers-headless"])?;
    assert_eq!(t.row("numbers-api")?["ENDPOINTS"], "192.168.123.234:80");
    let ep = get_json(&k, &["ep", "my-service", "-n", "manual-ep"])?;
    assert_eq!(
        ep["subsets"],
        json!([{"addresses": [{"ip": "192.0.2.42"}], "ports": [{"port": 9376, "protocol": "TCP"}]}])
    );
    // The API server's own Endpoints, for the `kubernetes` Service.
    let t = get_table(&k, &["ep", "kubernetes"])?;
    assert_eq!(t.row("kubernetes")?["ENDPOINTS"], format!("127.0.0.1:{}", api.port()));
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Pods, NetworkPolicies
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn seed_pods_are_pending_with_their_dns_and_hosts_settings() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    apply_all_seeds(&k)?;

    let t = get_table(&k, &["pods", "-n", "pods", "-o", "wide"])?;
    assert_eq!(
        t.columns,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    );
    assert_eq!(t.names(), ["busybox1", "busybox2", "curlpod", "hostaliases-pod"]);
    for name in t.names() {
        let row = t.row(name)?;
        assert_eq!(
            [row["READY"], row["STATUS"], row["RESTARTS"], row["IP"], row["NODE"]],
            ["0/1", "Pending", "0", "<none>", "<none>"],
            "{name}"
        );
    }
    let t = get_table(&k, &["pods", "-l", "name=busybox", "-n", "pods"])?;
    assert_eq!(t.columns, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(t.names(), ["busybox1", "busybox2"]);

    let busybox1 = get_json(&k, &["pod", "busybox1", "-n", "pods"])?;
    assert_eq!(
        (&busybox1["spec"]["hostname"], &busybox1["spec"]["subdomain"]),
        (&json!("busybox-1"), &json!("default-subdomain"))
    );
    assert_eq!(busybox1["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(busybox1["spec"]["restartPolicy"], "Always");
    assert_eq!(busybox1["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(busybox1["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent", "busybox:1.28 has a tag");
    assert_eq!(busybox1["status"]["phase"], "Pending");

    let aliases = get_json(&k, &["pod", "hostaliases-pod", "-n", "pods"])?;
    assert_eq!(
        aliases["spec"]["hostAliases"],
        json!([{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
               {"ip": "10.1.2.3", "hostnames": ["foo.remote", "bar.remote"]}])
    );
    assert_eq!(aliases["spec"]["restartPolicy"], "Never");
    assert_eq!(aliases["spec"]["containers"][0]["imagePullPolicy"], "Always", "busybox without a tag is :latest");

    let dns = get_json(&k, &["pod", "dns-example"])?;
    assert_eq!(dns["spec"]["dnsPolicy"], "None");
    assert_eq!(
        dns["spec"]["dnsConfig"],
        json!({"nameservers": ["1.2.3.4"], "searches": ["ns1.svc.cluster-domain.example", "my.dns.search.suffix"],
               "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    );
    let host = ok(&k, &["get", "pod", "busybox", "-o", "jsonpath={.spec.hostNetwork} {.spec.dnsPolicy}"])?;
    assert_eq!(host, "true ClusterFirstWithHostNet");
    Ok(())
}

#[tokio::test]
async fn network_policies_read_back_and_describe_and_vs_or() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    apply_all_seeds(&k)?;

    let t = get_table(&k, &["netpol", "-n", "np-1"])?;
    assert_eq!(t.columns, ["NAME", "POD-SELECTOR", "AGE"]);
    assert_eq!(t.names(), ["alice-client-and", "alice-client-or", "allow-all", "default-deny"]);
    assert_eq!(t.row("default-deny")?["POD-SELECTOR"], "<none>");
    assert_eq!(get_table(&k, &["networkpolicy", "-n", "nginx"])?.row("access-nginx")?["POD-SELECTOR"], "app=nginx");
    assert_eq!(
        get_table(&k, &["netpol", "test-network-policy"])?.row("test-network-policy")?["POD-SELECTOR"],
        "role=db"
    );

    // policyTypes defaults to Ingress when the manifest has none (access-nginx), and is kept when given.
    let access = get_json(&k, &["netpol", "access-nginx", "-n", "nginx"])?;
    assert_eq!(access["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(access["spec"]["ingress"], json!([{"from": [{"podSelector": {"matchLabels": {"access": "true"}}}]}]));
    let egress = get_json(&k, &["netpol", "allow-all", "-n", "np-2"])?;
    assert_eq!((&egress["spec"]["policyTypes"], &egress["spec"]["egress"]), (&json!(["Egress"]), &json!([{}])));
    let full = get_json(&k, &["netpol", "test-network-policy"])?;
    assert_eq!(full["spec"]["ingress"][0]["ports"], json!([{"protocol": "TCP", "port": 6379}]));
    assert_eq!(
        full["spec"]["ingress"][0]["from"][0],
        json!({"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}})
    );

    // The seed's advice: `kubectl describe` shows how a `from` element was understood.
    let and = ok(&k, &["describe", "netpol", "alice-client-and", "-n", "np-1"])?;
    assert!(
        and.contains("    From:\n      NamespaceSelector: user=alice\n      PodSelector: role=client\n"),
        "one from element with both selectors:\n{and}"
    );
    let or = ok(&k, &["describe", "netpol", "alice-client-or", "-n", "np-1"])?;
    assert!(
        or.contains("    From:\n      NamespaceSelector: user=alice\n    From:\n      PodSelector: role=client\n"),
        "two from elements:\n{or}"
    );
    assert_eq!(
        described(&and, "  PodSelector").first().copied(),
        Some("<none> (Allowing the specific traffic to all pods in this namespace)")
    );
    let deny = ok(&k, &["describe", "netpol", "default-deny", "-n", "np-2"])?;
    assert!(
        deny.contains("  Allowing ingress traffic:\n    <none> (Selected pods are isolated for ingress connectivity)"),
        "{deny}"
    );
    assert!(
        deny.contains("  Allowing egress traffic:\n    <none> (Selected pods are isolated for egress connectivity)"),
        "{deny}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Edit and re-apply (strategic merge patch), label, scale, expose, delete, get all
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn edit_and_reapply_is_a_strategic_merge_patch() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    namespace(&k, "web")?;
    apply_seed(&k, Some("web"), "service-multi-port.yaml", "service/my-service created")?;
    let before = get_json(&k, &["svc", "my-service", "-n", "web"])?;
    // Someone else labels the Service; apply must leave what it did not set alone.
    assert_eq!(ok(&k, &["label", "svc", "my-service", "-n", "web", "team=blue"])?.trim(), "service/my-service labeled");

    // Edit: https now targets 8443 and the Service gets a label.
    let edited = seed_text("service-multi-port.yaml")?
        .replace("targetPort: 9377", "targetPort: 8443")
        .replace("  name: my-service\n", "  name: my-service\n  labels:\n    tier: web\n");
    let out = k.run_with_stdin(&["apply", "-n", "web", "-f", "-"], &edited)?.ok()?;
    assert_eq!(out.stdout.trim(), "service/my-service configured");
    let after = get_json(&k, &["svc", "my-service", "-n", "web"])?;
    assert_eq!(
        after["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9376},
               {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 8443}])
    );
    assert_eq!(after["metadata"]["labels"], json!({"team": "blue", "tier": "web"}));
    assert_eq!(after["spec"]["clusterIP"], before["spec"]["clusterIP"], "an update keeps the allocated IP");
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    let rv = |v: &Value| v["metadata"]["resourceVersion"].as_str().and_then(|s| s.parse::<u64>().ok());
    assert!(rv(&after) > rv(&before), "{before} -> {after}");

    // The same again: nothing to patch.
    let out = k.run_with_stdin(&["apply", "-n", "web", "-f", "-"], &edited)?.ok()?;
    assert_eq!(out.stdout.trim(), "service/my-service unchanged");

    // Dropping a port from the manifest deletes it from the list (a `$patch: delete` by merge key `port`).
    let one_port =
        edited.replace("    - name: https\n      protocol: TCP\n      port: 443\n      targetPort: 8443\n", "");
    ensure!(one_port != edited, "the edit did not apply to the manifest");
    let out = k.run_with_stdin(&["apply", "-n", "web", "-f", "-"], &one_port)?.ok()?;
    assert_eq!(out.stdout.trim(), "service/my-service configured");
    let ports = ok(&k, &["get", "svc", "my-service", "-n", "web", "-o", "jsonpath={.spec.ports}"])?;
    assert_eq!(
        serde_json::from_str::<Value>(&ports)?,
        json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9376}])
    );

    // A Deployment: the container list merges by name, so a new image keeps the container's ports.
    apply_seed(&k, Some("web"), "deployment-my-nginx.yaml", "deployment.apps/my-nginx created")?;
    let edited = seed_text("deployment-my-nginx.yaml")?.replace("image: nginx", "image: nginx:1.27");
    let out = k.run_with_stdin(&["apply", "-n", "web", "-f", "-"], &edited)?.ok()?;
    assert_eq!(out.stdout.trim(), "deployment.apps/my-nginx configured");
    let d = get_json(&k, &["deploy", "my-nginx", "-n", "web"])?;
    let containers = &d["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1), "{d}");
    assert_eq!(containers[0]["image"], "nginx:1.27");
    assert_eq!(containers[0]["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    assert_eq!(d["metadata"]["generation"], 2, "a spec change is a new generation");
    Ok(())
}

#[tokio::test]
async fn label_scale_expose_and_delete_my_nginx() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    namespace(&k, "web")?;
    apply_seed(&k, Some("web"), "deployment-my-nginx.yaml", "deployment.apps/my-nginx created")?;
    apply_seed(&k, Some("web"), "replicationcontroller-my-nginx.yaml", "replicationcontroller/my-nginx created")?;
    let n = ["-n", "web"];
    let with_ns = |args: &[&'static str]| -> Vec<&'static str> { args.iter().copied().chain(n).collect() };

    // The columns of -o wide for the workloads.
    let t = get_table(&k, &with_ns(&["deploy", "-o", "wide"]))?;
    assert_eq!(t.columns, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]);
    let row = t.row("my-nginx")?;
    assert_eq!(
        [row["READY"], row["CONTAINERS"], row["IMAGES"], row["SELECTOR"]],
        ["0/2", "my-nginx", "nginx", "run=my-nginx"]
    );
    let t = get_table(&k, &with_ns(&["rc", "-o", "wide"]))?;
    assert_eq!(t.columns, ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]);
    let row = t.row("my-nginx")?;
    assert_eq!([row["DESIRED"], row["CURRENT"], row["READY"], row["SELECTOR"]], ["2", "0", "0", "app=nginx"]);
    // The ReplicationController's selector defaults to its template's labels.
    assert_eq!(ok(&k, &with_ns(&["get", "rc", "my-nginx", "-o", "jsonpath={.spec.selector}"]))?, r#"{"app":"nginx"}"#);

    // label: add, select by it, overwrite, remove.
    assert_eq!(
        ok(&k, &with_ns(&["label", "deployment", "my-nginx", "tier=web"]))?.trim(),
        "deployment.apps/my-nginx labeled"
    );
    assert_eq!(
        ok(&k, &with_ns(&["get", "deploy", "-l", "tier=web", "-o", "name"]))?.trim(),
        "deployment.apps/my-nginx"
    );
    assert_eq!(ok(&k, &with_ns(&["get", "deploy", "-l", "tier!=web", "-o", "name"]))?.trim(), "");
    let err = failure(k.run(&with_ns(&["label", "deployment", "my-nginx", "tier=db"]))?)?;
    assert!(err.contains("'tier' already has a value (web), and --overwrite is false"), "{err}");
    assert_eq!(
        ok(&k, &with_ns(&["label", "deployment", "my-nginx", "tier=db", "--overwrite"]))?.trim(),
        "deployment.apps/my-nginx labeled"
    );
    assert_eq!(
        ok(&k, &with_ns(&["get", "deploy", "my-nginx", "-o", "jsonpath={.metadata.labels}"]))?,
        r#"{"tier":"db"}"#
    );
    assert_eq!(
        ok(&k, &with_ns(&["label", "deployment", "my-nginx", "tier-"]))?.trim(),
        "deployment.apps/my-nginx unlabeled"
    );
    assert_eq!(ok(&k, &with_ns(&["get", "deploy", "my-nginx", "-o", "jsonpath={.metadata.labels}"]))?, "");

    // scale, through the scale subresource.
    assert_eq!(
        ok(&k, &with_ns(&["scale", "deployment", "my-nginx", "--replicas=3"]))?.trim(),
        "deployment.apps/my-nginx scaled"
    );
    assert_eq!(ok(&k, &with_ns(&["get", "deploy", "my-nginx", "-o", "jsonpath={.spec.replicas}"]))?, "3");
    assert_eq!(get_table(&k, &with_ns(&["deploy"]))?.row("my-nginx")?["READY"], "0/3");
    assert_eq!(
        ok(&k, &with_ns(&["scale", "rc", "my-nginx", "--replicas=1"]))?.trim(),
        "replicationcontroller/my-nginx scaled"
    );
    assert_eq!(ok(&k, &with_ns(&["get", "rc", "my-nginx", "-o", "jsonpath={.spec.replicas}"]))?, "1");
    let err =
        failure(k.run(&with_ns(&["scale", "deployment", "my-nginx", "--replicas=5", "--current-replicas=2"]))?)?;
    assert!(err.contains("Expected replicas to be 2, was 3"), "{err}");

    // expose: a Service with the Deployment's selector, as the seed's nginx-svc.yaml.
    assert_eq!(ok(&k, &with_ns(&["expose", "deployment/my-nginx", "--port=80"]))?.trim(), "service/my-nginx exposed");
    let svc = get_json(&k, &with_ns(&["svc", "my-nginx"]))?;
    assert_eq!(svc["spec"]["selector"], json!({"run": "my-nginx"}));
    assert_eq!(svc["spec"]["ports"], json!([{"port": 80, "protocol": "TCP", "targetPort": 80}]));
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert!(svc["spec"]["clusterIP"].as_str().is_some_and(in_service_cidr), "{svc}");
    let err = failure(k.run(&with_ns(&["expose", "deployment/my-nginx", "--port=80"]))?)?;
    assert_eq!(err.trim(), "Error from server (AlreadyExists): services \"my-nginx\" already exists");

    // delete.
    assert_eq!(
        ok(&k, &with_ns(&["delete", "svc", "my-nginx"]))?.trim(),
        "service \"my-nginx\" deleted from web namespace"
    );
    assert_eq!(
        ok(&k, &with_ns(&["delete", "deployment", "my-nginx"]))?.trim(),
        "deployment.apps \"my-nginx\" deleted from web namespace"
    );
    let err = failure(k.run(&with_ns(&["get", "deployment", "my-nginx"]))?)?;
    assert_eq!(err.trim(), "Error from server (NotFound): deployments.apps \"my-nginx\" not found");
    let err = failure(k.run(&with_ns(&["delete", "svc", "my-nginx"]))?)?;
    assert_eq!(err.trim(), "Error from server (NotFound): services \"my-nginx\" not found");
    assert_eq!(ok(&k, &with_ns(&["get", "svc,deploy", "-o", "name"]))?.trim(), "");
    Ok(())
}

#[tokio::test]
async fn get_all_lists_every_workload_section() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    namespace(&k, "web")?;
    apply_seed(&k, Some("web"), "deployment-my-nginx.yaml", "deployment.apps/my-nginx created")?;
    apply_seed(&k, Some("web"), "replicationcontroller-my-nginx.yaml", "replicationcontroller/my-nginx created")?;
    apply_seed(&k, Some("web"), "service-my-nginx.yaml", "service/my-nginx created")?;
    apply_seed(&k, Some("web"), "pod-curlpod.yaml", "pod/curlpod created")?;
    // No controller makes ReplicaSets yet: one by hand, as the Deployment controller would.
    let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: my-nginx-5d8f7c9b4\n  namespace: web\n  \
              labels:\n    run: my-nginx\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      run: my-nginx\n  \
              template:\n    metadata:\n      labels:\n        run: my-nginx\n    spec:\n      containers:\n      \
              - name: my-nginx\n        image: nginx\n";
    assert_eq!(k.apply_yaml(rs)?.ok()?.stdout.trim(), "replicaset.apps/my-nginx-5d8f7c9b4 created");

    let out = ok(&k, &["get", "all", "-n", "web"])?;
    let sections: Vec<Table> =
        out.split("\n\n").filter(|s| !s.trim().is_empty()).map(Table::parse).collect::<Result<_>>()?;
    let names: Vec<Vec<&str>> = sections.iter().map(Table::names).collect();
    assert_eq!(
        names,
        [
            vec!["pod/curlpod"],
            vec!["replicationcontroller/my-nginx"],
            vec!["service/my-nginx"],
            vec!["deployment.apps/my-nginx"],
            vec!["replicaset.apps/my-nginx-5d8f7c9b4"],
        ],
        "{out}"
    );
    assert_eq!(sections[0].columns, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(sections[1].columns, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(sections[2].columns, ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]);
    assert_eq!(sections[3].columns, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(sections[4].columns, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(sections[4].row("replicaset.apps/my-nginx-5d8f7c9b4")?["DESIRED"], "2");

    // The seed's `kubectl get svc,pod`.
    let out = ok(&k, &["get", "svc,pod", "-n", "web", "-o", "name"])?;
    assert_eq!(out.lines().collect::<Vec<_>>(), ["service/my-nginx", "pod/curlpod"]);
    // The `all` category spans namespaces too.
    let out = ok(&k, &["get", "all", "-A", "-o", "name"])?;
    assert!(out.lines().any(|l| l == "service/kubernetes"), "{out}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// get -w, wait --for=delete, explain
// ---------------------------------------------------------------------------------------------------------

/// The first cell of a printed row.
fn first_cell(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

#[tokio::test]
async fn get_svc_watch_sees_changes_made_while_it_runs() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    namespace(&k, "numbers")?;
    apply_seed(&k, Some("numbers"), "service-cluster-ip-numbers-api.yaml", "service/numbers-api created")?;

    let mut watch = k.spawn(&["get", "svc", "-w", "-n", "numbers"])?;
    let header = watch.wait_for_line(STREAM_TIMEOUT, |l| l.starts_with("NAME"))?;
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    );
    let first = watch.wait_for_line(STREAM_TIMEOUT, |l| first_cell(l) == "numbers-api")?;
    assert!(first.contains("ClusterIP") && first.contains("80/TCP"), "{first}");

    // A Service created while kubectl watches shows up as a new row.
    apply_seed(&k, Some("numbers"), "service-loadbalancer-numbers-web.yaml", "service/numbers-web created")?;
    let added = watch.wait_for_line(STREAM_TIMEOUT, |l| first_cell(l) == "numbers-web")?;
    let cells: Vec<&str> = added.split_whitespace().collect();
    assert_eq!(cells[1], "LoadBalancer", "{added}");
    assert!(in_service_cidr(cells[2]) && cells[3] == "<pending>" && cells[4].starts_with("8080:3"), "{added}");

    // A change to a watched Service prints its row again, changed.
    let out = ok(
        &k,
        &["patch", "svc", "numbers-api", "-n", "numbers", "--type=merge", "-p", r#"{"spec":{"type":"NodePort"}}"#],
    )?;
    assert_eq!(out.trim(), "service/numbers-api patched");
    let modified = watch.wait_for_line(STREAM_TIMEOUT, |l| first_cell(l) == "numbers-api" && l.contains("NodePort"))?;
    assert!(modified.contains("80:3"), "a nodePort was allocated: {modified}");
    drop(watch);

    // With --output-watch-events kubectl names the events, deletion included.
    let mut events = k.spawn(&["get", "svc", "-w", "--output-watch-events", "-n", "numbers"])?;
    events.wait_for_line(STREAM_TIMEOUT, |l| l.starts_with("EVENT") && l.contains("NAME"))?;
    events.wait_for_line(STREAM_TIMEOUT, |l| l.starts_with("ADDED") && l.contains("numbers-web "))?;
    ok(&k, &["delete", "svc", "numbers-web", "-n", "numbers"])?;
    let deleted = events.wait_for_line(STREAM_TIMEOUT, |l| l.starts_with("DELETED"))?;
    assert!(deleted.split_whitespace().nth(1) == Some("numbers-web"), "{deleted}");
    Ok(())
}

#[tokio::test]
async fn wait_for_delete_returns_when_the_pod_is_deleted() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    namespace(&k, "pods")?;
    apply_seed(&k, Some("pods"), "pod-curlpod.yaml", "pod/curlpod created")?;

    let mut wait = k.spawn(&["wait", "--for=delete", "pod/curlpod", "--timeout=30s", "-n", "pods"])?;
    // Still waiting while the pod exists.
    ensure!(wait.next_line(Duration::from_millis(1500)).is_err(), "kubectl wait returned while the pod exists");
    let out = ok(&k, &["delete", "pod", "curlpod", "-n", "pods"])?;
    assert_eq!(out.trim(), "pod \"curlpod\" deleted from pods namespace");
    assert_eq!(wait.next_line(STREAM_TIMEOUT)?.as_deref(), Some("pod/curlpod condition met"));
    assert_eq!(wait.next_line(STREAM_TIMEOUT)?, None, "kubectl wait exits once the condition is met");

    // A pod held by a finalizer is only gone when the finalizer is removed: wait follows it to the end.
    let held = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: held\n  namespace: pods\n  finalizers:\n  - \
                example.com/hold\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
    assert_eq!(k.apply_yaml(held)?.ok()?.stdout.trim(), "pod/held created");
    ok(&k, &["delete", "pod", "held", "-n", "pods", "--wait=false"])?;
    let t = get_table(&k, &["pod", "held", "-n", "pods"])?;
    assert_eq!(t.row("held")?["STATUS"], "Terminating");
    let mut wait = k.spawn(&["wait", "--for=delete", "pod/held", "--timeout=30s", "-n", "pods"])?;
    ensure!(
        wait.next_line(Duration::from_millis(1500)).is_err(),
        "kubectl wait returned while a finalizer holds the pod"
    );
    ok(
        &k,
        &[
            "patch",
            "pod",
            "held",
            "-n",
            "pods",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ],
    )?;
    assert_eq!(wait.next_line(STREAM_TIMEOUT)?.as_deref(), Some("pod/held condition met"));

    // Waiting times out with kubectl's message when nothing happens.
    apply_seed(&k, Some("pods"), "pod-busybox1-hostname-subdomain.yaml", "pod/busybox1 created")?;
    let err = failure(k.run(&["wait", "--for=delete", "pod/busybox1", "--timeout=1s", "-n", "pods"])?)?;
    assert_eq!(err.trim(), "error: timed out waiting for the condition on pods/busybox1");
    Ok(())
}

#[tokio::test]
async fn explain_service_spec_ports() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    let out = ok(&k, &["explain", "service.spec.ports"])?;
    assert_eq!(
        out.lines().take(4).collect::<Vec<_>>(),
        ["KIND:       Service", "VERSION:    v1", "", "FIELD: ports <[]ServicePort>"]
    );
    assert!(out.contains("DESCRIPTION:\n    The list of ports that are exposed by this service."), "{out}");
    let fields: Vec<&str> =
        out.lines().filter(|l| l.starts_with("  ") && !l.starts_with("   ")).map(str::trim).collect();
    assert_eq!(
        fields,
        [
            "appProtocol\t<string>",
            "name\t<string>",
            "nodePort\t<integer>",
            "port\t<integer> -required-",
            "protocol\t<string>",
            "targetPort\t<IntOrString>",
        ],
        "{out}"
    );
    assert!(out.contains("Supports \"TCP\", \"UDP\", and \"SCTP\". Default is\n    TCP."), "{out}");

    let out = ok(&k, &["explain", "svc.spec.sessionAffinityConfig.clientIP.timeoutSeconds"])?;
    assert!(out.contains("FIELD: timeoutSeconds <integer>"), "{out}");
    let err = failure(k.run(&["explain", "service.spec.portz"])?)?;
    assert!(err.contains("field \"portz\" does not exist"), "{err}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// The seeds' validation rules, in kube-apiserver's words as kubectl prints them
// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn seed_validation_errors_read_like_kube_apiserver() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    let apply_file = |file: &str| -> Result<String> {
        let path = seed(file);
        failure(k.run(&["apply", "-f", path.to_str().context("path")?])?)
    };

    let dns1123 = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must \
                   start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for \
                   validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    assert_eq!(
        apply_file("invalid-service-port-name.yaml")?.trim_end(),
        format!("The Service \"my-service\" is invalid: spec.ports[0].name: Invalid value: \"123_abc\": {dns1123}")
    );
    assert_eq!(
        apply_file("invalid-service-multi-port-without-names.yaml")?.trim_end(),
        "The Service \"my-service\" is invalid: \n* spec.ports[0].name: Required value\n* spec.ports[1].name: \
         Required value"
    );
    assert_eq!(
        apply_file("invalid-endpoints-loopback.yaml")?.trim_end(),
        "The Endpoints \"my-service\" is invalid: subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not \
         be in the loopback range (127.0.0.0/8, ::1/128)"
    );

    // The other examples of the seed's port-name tip: `-web` is illegal, `123-abc` and `web` are fine.
    let multi = seed_text("service-multi-port.yaml")?;
    let err = failure(k.apply_yaml(&multi.replace("name: http\n", "name: -web\n"))?)?;
    assert_eq!(
        err.trim_end(),
        format!("The Service \"my-service\" is invalid: spec.ports[0].name: Invalid value: \"-web\": {dns1123}")
    );
    let out =
        k.apply_yaml(&multi.replace("name: http\n", "name: 123-abc\n").replace("name: https\n", "name: web\n"))?;
    assert_eq!(out.ok()?.stdout.trim(), "service/my-service created");

    // The other address ranges the seed names for Endpoints, and a Service's cluster IP.
    let endpoints = seed_text("endpoints-manual.yaml")?;
    for (ip, why) in [
        ("169.254.1.1", "may not be in the link-local range (169.254.0.0/16, fe80::/10)"),
        ("224.0.0.5", "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"),
    ] {
        let err = failure(k.apply_yaml(&endpoints.replace("192.0.2.42", ip))?)?;
        assert_eq!(
            err.trim_end(),
            format!(
                "The Endpoints \"my-service\" is invalid: subsets[0].addresses[0].ip: Invalid value: \"{ip}\": {why}"
            )
        );
    }
    let err = failure(k.apply_yaml(&endpoints.replace("192.0.2.42", "10.96.0.1"))?)?;
    assert!(
        err.starts_with(
            "The Endpoints \"my-service\" is invalid: subsets[0].addresses[0].ip: Invalid value: \"10.96.0.1\""
        ),
        "{err}"
    );

    // dnsPolicy None needs dnsConfig with at least one and at most 3 nameservers.
    let pod = seed_text("pod-dns-config.yaml")?;
    let no_config = pod.split("  dnsConfig:").next().context("the seed has a dnsConfig")?.to_string();
    let err = failure(k.apply_yaml(&no_config)?)?;
    assert_eq!(
        err.trim_end(),
        "The Pod \"dns-example\" is invalid: spec.dnsConfig: Required value: must provide `dnsConfig` when \
         `dnsPolicy` is None"
    );
    let four = pod.replace("      - 1.2.3.4\n", "      - 1.2.3.4\n      - 1.2.3.5\n      - 1.2.3.6\n      - 1.2.3.7\n");
    let err = failure(k.apply_yaml(&four)?)?;
    assert_eq!(
        err.trim_end(),
        "The Pod \"dns-example\" is invalid: spec.dnsConfig.nameservers: Invalid value: \
         [\"1.2.3.4\",\"1.2.3.5\",\"1.2.3.6\",\"1.2.3.7\"]: must not have more than 3 nameservers"
    );

    // Nothing invalid was stored.
    assert_eq!(ok(&k, &["get", "endpoints,pods", "-o", "name"])?.trim(), "endpoints/kubernetes");
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// kubectl's typed generators
// ---------------------------------------------------------------------------------------------------------

/// `kubectl create namespace|deployment|configmap|secret|service` build the object in kubectl and send it
/// as protobuf (`Content-Type: application/vnd.kubernetes.protobuf`); knet-apiserver decodes it to JSON.
/// The seeds use `kubectl create deployment nginx --image=nginx` in the NetworkPolicy walkthrough.
#[tokio::test]
async fn kubectl_create_generators_work() -> Result<()> {
    let api = ApiServer::start().await?;
    let k = api.kubectl();
    assert_eq!(ok(&k, &["create", "namespace", "policy-demo"])?.trim(), "namespace/policy-demo created");
    let out = ok(&k, &["create", "deployment", "nginx", "--image=nginx", "-n", "policy-demo"])?;
    assert_eq!(out.trim(), "deployment.apps/nginx created");
    let out = ok(&k, &["expose", "deployment", "nginx", "--port=80", "-n", "policy-demo"])?;
    assert_eq!(out.trim(), "service/nginx exposed");
    let out = ok(&k, &["create", "configmap", "c", "--from-literal=a=b", "-n", "policy-demo"])?;
    assert_eq!(out.trim(), "configmap/c created");
    let out = ok(&k, &["create", "secret", "generic", "s", "--from-literal=a=b", "-n", "policy-demo"])?;
    assert_eq!(out.trim(), "secret/s created");
    let out = ok(&k, &["create", "service", "clusterip", "cs", "--tcp=80:80", "-n", "policy-demo"])?;
    assert_eq!(out.trim(), "service/cs created");
    let t = get_table(&k, &["deploy", "nginx", "-n", "policy-demo", "-o", "wide"])?;
    assert_eq!(t.row("nginx")?["SELECTOR"], "app=nginx");
    Ok(())
}

/// Guards the helpers above: a table with a two-word column cuts cells where kubectl aligns them.
#[test]
fn table_parser_cuts_at_column_starts() -> Result<()> {
    let text = "NAME   READY   IP         NOMINATED NODE   READINESS GATES\n\
                a      0/1     <none>     <none>           <none>\n\
                bb     1/1     10.0.0.1   n1               x\n";
    let t = Table::parse(text)?;
    assert_eq!(t.columns, ["NAME", "READY", "IP", "NOMINATED NODE", "READINESS GATES"]);
    assert_eq!(t.row("bb")?["NOMINATED NODE"], "n1");
    assert_eq!(t.row("a")?["READINESS GATES"], "<none>");
    assert_eq!(described("Name:   x\nIP:  1\nIPs:  2\n", "IP"), ["1"]);
    if Table::parse("").is_ok() {
        bail!("an empty output is not a table");
    }
    Ok(())
}
