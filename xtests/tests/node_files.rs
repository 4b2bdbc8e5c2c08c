//! The files and variables a pod sees, checked inside real pods (root): `/etc/hosts` in the seed's format
//! (with hostAliases, and the FQDN with a subdomain), `/etc/resolv.conf` for every dnsPolicy including the
//! seed's `dns-example`, the hostname, and the service environment variables of the seed (a Service created
//! before the pod shows up, one created after does not; `enableServiceLinks: false`).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use xtests::node_host::{root_or_skip, NodeHost, NODE_IP};

fn seed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/seeds").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

const HOSTS_HEADER: &str =
    "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_resolv_conf_and_hostname() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let host = NodeHost::start().await?;
    let k = host.kubectl();
    host.apply(&seed("pod-host-aliases.yaml"))?;
    host.apply(&seed("pod-dns-config.yaml"))?;
    host.apply(&seed("pod-busybox1-hostname-subdomain.yaml"))?;
    host.apply(&seed("service-headless-default-subdomain.yaml"))?;
    host.apply(&seed("pod-busybox-host-network.yaml"))?;
    host.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: cluster-first, namespace: default}
spec:
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: default-dns}
spec:
  dnsPolicy: Default
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
"#,
    )?;

    // The seed's hostAliases pod: `kubectl logs hostaliases-pod` prints the file (here: its CRI log).
    let done = host
        .wait_pod("default", "hostaliases-pod", Duration::from_secs(60), "Succeeded", |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
        })
        .await?;
    let ip = done.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    assert!(!ip.is_empty(), "a completed pod keeps its IP in the status");
    let want = format!(
        "{HOSTS_HEADER}{ip}\thostaliases-pod\n\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\tbar.remote\n"
    );
    assert_eq!(host.container_log("default", "hostaliases-pod", "cat-hosts").await?, want);
    let get = k.run(&["get", "pod", "hostaliases-pod"])?.ok()?.stdout;
    assert!(get.contains("0/1") && get.contains("Completed"), "{get}");

    // hostname and subdomain (seed: busybox1 with hostname busybox-1, subdomain default-subdomain).
    let p = host.wait_running("default", "busybox1").await?;
    let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    let hosts = host.exec_stdout("default", "busybox1", &["cat", "/etc/hosts"]).await?;
    assert_eq!(
        hosts,
        format!("{HOSTS_HEADER}{ip}\tbusybox-1.default-subdomain.default.svc.cluster.local\tbusybox-1\n")
    );
    assert_eq!(host.exec_stdout("default", "busybox1", &["hostname"]).await?.trim(), "busybox-1");
    assert_eq!(host.exec_stdout("default", "busybox1", &["cat", "/etc/hostname"]).await?.trim(), "busybox-1");

    // resolv.conf per dnsPolicy.
    host.wait_running("default", "cluster-first").await?;
    assert_eq!(
        host.exec_stdout("default", "cluster-first", &["cat", "/etc/resolv.conf"]).await?,
        "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local lab.example\noptions ndots:5\n"
    );
    host.wait_running("default", "default-dns").await?;
    assert_eq!(
        host.exec_stdout("default", "default-dns", &["cat", "/etc/resolv.conf"]).await?,
        "nameserver 192.168.56.200\nsearch lab.example\n"
    );
    // The seed's dns-example (dnsPolicy None + dnsConfig), an nginx pod.
    host.wait_running("default", "dns-example").await?;
    assert_eq!(
        host.exec_stdout("default", "dns-example", &["cat", "/etc/resolv.conf"]).await?,
        "nameserver 1.2.3.4\nsearch ns1.svc.cluster-domain.example my.dns.search.suffix\noptions ndots:2 edns0\n"
    );
    // The seed's host-network pod with ClusterFirstWithHostNet: cluster DNS, the node's IP and hosts file.
    let p = host.wait_running("default", "busybox").await?;
    assert_eq!(p.status.as_ref().and_then(|s| s.pod_ip.clone()), Some(NODE_IP.to_string()));
    assert!(host
        .exec_stdout("default", "busybox", &["cat", "/etc/resolv.conf"])
        .await?
        .starts_with("nameserver 10.96.0.10\nsearch default.svc.cluster.local"));
    let hosts = host.exec_stdout("default", "busybox", &["cat", "/etc/hosts"]).await?;
    assert!(hosts.starts_with("# Kubernetes-managed hosts file (host network).\n"), "{hosts}");
    let links = host.exec_stdout("default", "busybox", &["ip", "-o", "link"]).await?;
    assert!(links.contains("knode0"), "a host-network pod sees the node's interfaces: {links}");
    Ok(())
}

fn service_vars(env: &[(String, String)]) -> Vec<String> {
    let mut v: Vec<String> =
        env.iter().filter(|(k, _)| k.contains("SERVICE")).map(|(k, v)| format!("{k}={v}")).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_environment_variables() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let host = NodeHost::start().await?;
    let k = host.kubectl();
    let kubernetes_ip = k.run(&["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"])?.ok()?.stdout;
    // A Service that exists before the pod...
    host.apply(&seed("service-my-nginx.yaml"))?;
    let my_nginx_ip = k.run(&["get", "svc", "my-nginx", "-o", "jsonpath={.spec.clusterIP}"])?.ok()?.stdout;
    host.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: envpod, labels: {run: my-nginx}}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    env: [{name: GREETING, value: "hello $(MY_NGINX_SERVICE_HOST)"}]
---
apiVersion: v1
kind: Pod
metadata: {name: nolinks}
spec:
  enableServiceLinks: false
  containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
"#,
    )?;
    host.wait_running("default", "envpod").await?;
    host.wait_running("default", "nolinks").await?;
    // ...and one created after it.
    host.apply("apiVersion: v1\nkind: Service\nmetadata: {name: later}\nspec:\n  ports: [{port: 8080}]\n")?;

    let env = host.container_env("default", "envpod", "c").await?;
    let want: Vec<String> = vec![
        format!("KUBERNETES_SERVICE_HOST={kubernetes_ip}"),
        "KUBERNETES_SERVICE_PORT=443".into(),
        "KUBERNETES_SERVICE_PORT_HTTPS=443".into(),
        format!("MY_NGINX_SERVICE_HOST={my_nginx_ip}"),
        "MY_NGINX_SERVICE_PORT=80".into(),
    ];
    let mut want = want;
    want.sort();
    assert_eq!(service_vars(&env), want);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("MY_NGINX_PORT"), Some(format!("tcp://{my_nginx_ip}:80")));
    assert_eq!(get("MY_NGINX_PORT_80_TCP_ADDR"), Some(my_nginx_ip.clone()));
    assert_eq!(get("MY_NGINX_PORT_80_TCP_PROTO").as_deref(), Some("tcp"));
    assert_eq!(get("GREETING"), Some(format!("hello {my_nginx_ip}")));
    assert_eq!(get("HOSTNAME").as_deref(), Some("envpod"));
    assert!(get("PATH").unwrap_or_default().starts_with("/.knet/busybox:"));
    assert!(get("LATER_SERVICE_HOST").is_none(), "a Service created after the pod has no variables");

    let nolinks = host.container_env("default", "nolinks", "c").await?;
    let mut only_kubernetes = vec![
        format!("KUBERNETES_SERVICE_HOST={kubernetes_ip}"),
        "KUBERNETES_SERVICE_PORT=443".into(),
        "KUBERNETES_SERVICE_PORT_HTTPS=443".into(),
    ];
    only_kubernetes.sort();
    assert_eq!(service_vars(&nolinks), only_kubernetes);
    Ok(())
}
