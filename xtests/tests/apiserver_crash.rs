//! Crash safety: clients stream creates, the server is killed with SIGKILL mid-way,
//! and after a restart every create that got a 2xx is there, and resourceVersions
//! keep increasing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use xtests::ApiServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_create_survives_kill_9() -> Result<()> {
    let mut server = ApiServer::start().await?;
    let acked: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let api: Api<ConfigMap> = Api::namespaced(server.client().await?, "default");
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                let obj: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"i": i.to_string()}}))?;
                match api.create(&PostParams::default(), &obj).await {
                    Ok(o) => {
                        let rv = o.metadata.resource_version.unwrap_or_default().parse().unwrap_or(0);
                        acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push((name, rv));
                    }
                    Err(_) => break, // the server is gone
                }
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    for w in writers {
        w.await??;
    }
    let acked = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    assert!(acked.len() > 50, "too few creates before the kill: {}", acked.len());

    server.restart().await?;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await?, "default");
    let list = api.list(&Default::default()).await?;
    let names: std::collections::HashSet<String> = list.items.iter().filter_map(|c| c.metadata.name.clone()).collect();
    let missing: Vec<&String> = acked.iter().map(|(n, _)| n).filter(|n| !names.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged creates lost after kill -9, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    let max_rv = acked.iter().map(|(_, rv)| *rv).max().unwrap_or(0);
    let fresh: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "after-restart"}}))?;
    let created = api.create(&PostParams::default(), &fresh).await?;
    let rv: i64 = created.metadata.resource_version.unwrap_or_default().parse()?;
    assert!(rv > max_rv, "resourceVersion went backwards: {rv} <= {max_rv}");
    Ok(())
}
