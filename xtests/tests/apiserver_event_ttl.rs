//! `knet-apiserver --event-ttl`: Events published with kube-rs' `Recorder` are deleted once they have not
//! been observed for the TTL (a watch sees them go, kubectl no longer lists them, /metrics counts them),
//! while an Event that keeps recurring lives on.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use serde_json::json;
use xtests::{wait, ApiServer};

const TTL: Duration = Duration::from_secs(2);

fn event(reason: &str) -> Event {
    Event {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(format!("{reason} happened")),
        action: "Testing".into(),
        secondary: None,
    }
}

/// The reasons `kubectl get events` lists in the default namespace.
fn kubectl_reasons(server: &ApiServer) -> Result<Vec<String>> {
    let out = server.kubectl().run(&["get", "events", "-o", "jsonpath={.items[*].reason}"])?.ok()?.stdout;
    Ok(out.split_whitespace().map(String::from).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_not_observed_for_the_ttl_are_deleted() -> Result<()> {
    let server = ApiServer::start_with_args(&["--event-ttl", "2s"]).await?;
    let client = server.client().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
    }))?;
    let reference = pods.create(&PostParams::default(), &pod).await?.object_ref(&());
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let rv = core.list(&Default::default()).await?.metadata.resource_version.unwrap_or_default();
    let mut watch = core.watch(&WatchParams::default(), &rv).await?.boxed();

    let recorder = Recorder::new(client, Reporter { controller: "knet-xtests".into(), instance: None });
    let started = Instant::now();
    recorder.publish(&event("Once"), &reference).await.context("publishing Once")?;
    recorder.publish(&event("Recurring"), &reference).await.context("publishing Recurring")?;
    assert_eq!(kubectl_reasons(&server)?, ["Once", "Recurring"]);

    // Recurring is observed again every 500 ms for twice the TTL; Once goes meanwhile.
    while started.elapsed() < TTL * 2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        recorder.publish(&event("Recurring"), &reference).await.context("publishing Recurring again")?;
    }
    assert_eq!(kubectl_reasons(&server)?, ["Recurring"], "Once expired, Recurring is still observed");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let deleted = loop {
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Err(_) => bail!("no DELETED event for Once within 10 s"),
            Ok(None) => bail!("the watch ended"),
            Ok(Some(ev)) => {
                if let WatchEvent::Deleted(e) = ev? {
                    break e;
                }
            }
        }
    };
    assert_eq!(deleted.reason.as_deref(), Some("Once"), "the first Event deleted is the one observed once");

    // Once it stops recurring, it expires too.
    wait::until(Duration::from_secs(10), "the Recurring event to expire", || async {
        let reasons = kubectl_reasons(&server)?;
        anyhow::ensure!(reasons.is_empty(), "kubectl still lists {reasons:?}");
        Ok(Some(()))
    })
    .await?;
    let metrics = server.metrics().await?;
    assert!(metrics.contains("knet_apiserver_events_expired_total 2"), "{metrics}");
    Ok(())
}
