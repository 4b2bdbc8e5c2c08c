//! The API server's ClusterIP/NodePort repair, against a real `knet-apiserver` whose store is edited while
//! it is stopped: a leaked allocation key is released after a few repair runs (until then its value is
//! refused), and a Service's lost key is restored at start-up (its value refused to another Service).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{Event, Service};
use knet_apiserver::storage::sled::{SledOptions, SledStore};
use knet_apiserver::storage::{Op, Store, Txn};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use xtests::ApiServer;

const LEAKED_IP: &str = "10.96.0.77";
const LEAKED_PORT: u16 = 30077;

/// Applies `ops` to the stopped server's store, through the storage library.
async fn edit_store(data_dir: &Path, ops: Vec<Op>) -> Result<()> {
    let store = SledStore::open(&data_dir.join("store"), SledOptions::default()).context("opening the store")?;
    let done = store.txn(Txn { compares: vec![], ops }).await.context("editing the store");
    store.close().await;
    anyhow::ensure!(done?.succeeded, "the store edit did not apply");
    Ok(())
}

async fn key_exists(data_dir: &Path, key: &str) -> Result<bool> {
    let store = SledStore::open(&data_dir.join("store"), SledOptions::default()).context("opening the store")?;
    let found = store.get(key).await.context("reading the store");
    store.close().await;
    Ok(found?.is_some())
}

fn service(name: &str, ip: &str, node_port: Option<u16>) -> Result<Service> {
    let mut s = json!({"metadata": {"name": name}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    if let Some(p) = node_port {
        s["spec"]["type"] = json!("NodePort");
        s["spec"]["ports"][0]["nodePort"] = json!(p);
    }
    Ok(serde_json::from_value(s)?)
}

async fn create(api: &Api<Service>, svc: &Service) -> Result<Result<Service, kube::core::Status>> {
    match api.create(&PostParams::default(), svc).await {
        Ok(s) => Ok(Ok(s)),
        Err(kube::Error::Api(status)) => Ok(Err(*status)),
        Err(e) => Err(e.into()),
    }
}

async fn metrics(server: &ApiServer) -> Result<String> {
    let resp = server
        .http()?
        .get(format!("{}/metrics", server.url()))
        .bearer_auth(server.admin_token()?)
        .send()
        .await?
        .error_for_status()?;
    Ok(resp.text().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_allocation_is_refused_then_released_by_repair() -> Result<()> {
    let mut server = ApiServer::start_with_args(&["--repair-interval", "1s"]).await?;
    let services: Api<Service> = Api::namespaced(server.client().await?, "default");
    server.stop().await?;
    let owner = json!({"namespace": "default", "name": "gone"}).to_string().into_bytes();
    edit_store(
        server.data_dir(),
        vec![
            Op::Put { key: format!("/allocations/clusterips/{LEAKED_IP}"), value: owner.clone().into() },
            Op::Put { key: format!("/allocations/nodeports/{LEAKED_PORT}"), value: owner.into() },
        ],
    )
    .await?;
    server.restart().await?;

    // The start-up repair saw the leak once; it is released only on the third sighting, ~2 s from now.
    let wanted = service("wants-the-leak", LEAKED_IP, Some(LEAKED_PORT))?;
    let refused = match create(&services, &wanted).await? {
        Ok(_) => bail!("the leaked IP was handed out before the repair released it"),
        Err(status) => status,
    };
    assert_eq!(refused.code, 422);
    assert!(
        refused.message.contains(&format!("failed to allocate IP {LEAKED_IP}: provided IP is already allocated")),
        "{}",
        refused.message
    );
    assert!(refused.message.contains("provided port is already allocated"), "{}", refused.message);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let created = loop {
        match create(&services, &wanted).await? {
            Ok(s) => break s,
            Err(status) if tokio::time::Instant::now() < deadline => {
                assert_eq!(status.code, 422, "{}", status.message);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(status) => bail!("the leak was not released within 20 s: {}", status.message),
        }
    };
    let spec = created.spec.context("no spec")?;
    assert_eq!(spec.cluster_ip.as_deref(), Some(LEAKED_IP));
    assert_eq!(spec.ports.unwrap_or_default()[0].node_port, Some(i32::from(LEAKED_PORT)));
    let text = metrics(&server).await?;
    for line in [
        "knet_apiserver_repair_leaks_released_total{resource=\"clusterips\"} 1",
        "knet_apiserver_repair_leaks_released_total{resource=\"nodeports\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from /metrics:\n{text}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_allocation_key_is_restored_at_start_up() -> Result<()> {
    let mut server = ApiServer::start_with_args(&["--repair-interval", "1s"]).await?;
    let client = server.client().await?;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services.create(&PostParams::default(), &service("web", "10.96.0.88", None)?).await?;
    server.stop().await?;
    let key = "/allocations/clusterips/10.96.0.88";
    edit_store(server.data_dir(), vec![Op::Delete { key: key.into() }]).await?;
    server.restart().await?;

    let refused = match create(&services, &service("thief", "10.96.0.88", None)?).await? {
        Ok(_) => bail!("web's ClusterIP was handed to another Service after its key was lost"),
        Err(status) => status,
    };
    assert_eq!(refused.code, 422);
    assert!(refused.message.contains("provided IP is already allocated"), "{}", refused.message);

    let events: Api<Event> = Api::namespaced(client, "default");
    let on_web =
        events.list(&ListParams::default().fields("involvedObject.name=web,involvedObject.kind=Service")).await?;
    let restored = on_web
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("ClusterIPNotAllocated"))
        .context("no ClusterIPNotAllocated event on the Service")?;
    assert_eq!(restored.message.as_deref(), Some("Cluster IP [IPv4]: 10.96.0.88 is not allocated; repairing"));
    assert_eq!(restored.type_.as_deref(), Some("Warning"));
    assert!(metrics(&server)
        .await?
        .contains("knet_apiserver_repair_allocations_restored_total{resource=\"clusterips\"} 1"));

    server.stop().await?;
    assert!(key_exists(server.data_dir(), key).await?, "the restored key is in the store");
    Ok(())
}
