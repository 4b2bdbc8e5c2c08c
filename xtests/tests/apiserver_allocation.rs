//! Service IP and port allocation through the real API server: requested values,
//! kube-apiserver's exact errors as kubectl prints them, and many concurrent clients
//! never getting a duplicate.

use std::collections::HashSet;

use anyhow::Result;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use serde_json::json;
use xtests::ApiServer;

fn service(name: &str, spec: serde_json::Value) -> Result<Service> {
    Ok(serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}),
    )?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_shows_kube_apiserver_allocation_errors() -> Result<()> {
    let server = ApiServer::start().await?;
    let kubectl = server.kubectl();
    let ok = kubectl.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: np1\nspec:\n  type: NodePort\n  clusterIP: 10.96.0.20\n  selector:\n    app: a\n  ports:\n  - port: 80\n    nodePort: 30080\n",
    )?;
    assert!(ok.success(), "{}", ok.stderr);
    let out = kubectl.run(&["get", "svc", "np1", "-o", "jsonpath={.spec.clusterIP} {.spec.ports[0].nodePort}"])?;
    assert_eq!(out.stdout.trim(), "10.96.0.20 30080");

    let taken = kubectl.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: np2\nspec:\n  type: NodePort\n  selector:\n    app: a\n  ports:\n  - port: 80\n    nodePort: 30080\n",
    )?;
    assert!(!taken.success());
    assert!(
        taken.stderr.contains(
            "The Service \"np2\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{}",
        taken.stderr
    );
    let range = kubectl.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ip2\nspec:\n  clusterIP: 10.97.0.1\n  selector:\n    app: a\n  ports:\n  - port: 80\n",
    )?;
    assert!(!range.success());
    assert!(
        range.stderr.contains("The Service \"ip2\" is invalid: spec.clusterIPs: Invalid value: [\"10.97.0.1\"]: failed to allocate IP 10.97.0.1: the provided IP (10.97.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/16"),
        "{}",
        range.stderr
    );
    let dup_ip = kubectl.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ip3\nspec:\n  clusterIP: 10.96.0.20\n  selector:\n    app: a\n  ports:\n  - port: 80\n",
    )?;
    assert!(!dup_ip.success());
    assert!(
        dup_ip.stderr.contains("failed to allocate IP 10.96.0.20: provided IP is already allocated"),
        "{}",
        dup_ip.stderr
    );
    let out_of_range_port = kubectl.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: np4\nspec:\n  type: NodePort\n  selector:\n    app: a\n  ports:\n  - port: 80\n    nodePort: 80\n",
    )?;
    assert!(out_of_range_port.stderr.contains(
        "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
    ), "{}", out_of_range_port.stderr);

    // Headless and ExternalName get no ClusterIP; delete releases.
    let headless = kubectl.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: hl\nspec:\n  clusterIP: None\n  selector:\n    app: a\n  ports:\n  - port: 80\n",
    )?;
    assert!(headless.success(), "{}", headless.stderr);
    let ext = kubectl.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: ext\nspec:\n  type: ExternalName\n  externalName: example.com\n",
    )?;
    assert!(ext.success(), "{}", ext.stderr);
    let out = kubectl.run(&["get", "svc", "hl", "ext", "-o", "jsonpath={.items[*].spec.clusterIP}"])?;
    assert_eq!(out.stdout.trim(), "None");
    assert!(kubectl.run(&["delete", "svc", "np1"])?.success());
    let again = kubectl.apply_yaml(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: np5\nspec:\n  type: NodePort\n  clusterIP: 10.96.0.20\n  selector:\n    app: a\n  ports:\n  - port: 80\n    nodePort: 30080\n",
    )?;
    assert!(again.success(), "{}", again.stderr);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_clients_create_a_thousand_services_without_duplicates() -> Result<()> {
    let server = ApiServer::start().await?;
    let mut tasks = Vec::new();
    for c in 0..10 {
        let client = server.client().await?;
        tasks.push(tokio::spawn(async move {
            let api: Api<Service> = Api::namespaced(client, "default");
            let mut out = Vec::new();
            for i in 0..100 {
                let typ = if i % 2 == 0 { "NodePort" } else { "ClusterIP" };
                let svc = service(
                    &format!("c{c}-s{i}"),
                    json!({"type": typ, "selector": {"app": "x"}, "ports": [{"port": 80}]}),
                )?;
                let created = api.create(&PostParams::default(), &svc).await?;
                out.push(created);
            }
            anyhow::Ok(out)
        }));
    }
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for svc in t.await?? {
            total += 1;
            let spec = svc.spec.unwrap_or_default();
            let ip = spec.cluster_ip.unwrap_or_default();
            assert!(ip.starts_with("10.96."), "{ip}");
            assert!(ips.insert(ip.clone()), "duplicate ClusterIP {ip}");
            for p in spec.ports.unwrap_or_default() {
                if let Some(np) = p.node_port {
                    assert!((30000..=32767).contains(&np));
                    assert!(ports.insert(np), "duplicate nodePort {np}");
                }
            }
        }
    }
    assert_eq!(total, 1000);
    assert_eq!(ips.len(), 1000);
    assert_eq!(ports.len(), 500);
    // The stored state agrees.
    let api: Api<Service> = Api::namespaced(server.client().await?, "default");
    let listed = api.list(&Default::default()).await?;
    let stored: HashSet<String> =
        listed.items.iter().filter_map(|s| s.spec.as_ref().and_then(|s| s.cluster_ip.clone())).collect();
    assert_eq!(stored.len(), 1001, "1000 Services plus kubernetes");
    Ok(())
}
