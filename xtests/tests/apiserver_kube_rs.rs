//! A kube-rs client and a `kube::runtime::watcher` against knet-apiserver: CRUD, a
//! watcher that follows create/update/delete, survives a server restart, and relists
//! after a 410 Gone.

use std::time::Duration;

use anyhow::{bail, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use xtests::ApiServer;

fn cm(name: &str, v: &str) -> Result<ConfigMap> {
    Ok(serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}}))?)
}

/// Waits for the watcher to report `pred` true, up to 30 s.
async fn until<S>(stream: &mut S, what: &str, mut pred: impl FnMut(&Event<ConfigMap>) -> bool) -> Result<()>
where
    S: futures::Stream<Item = Result<Event<ConfigMap>, watcher::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, stream.next()).await;
        match next {
            Err(_) => bail!("timed out waiting for {what}"),
            Ok(None) => bail!("watcher ended waiting for {what}"),
            Ok(Some(Err(_))) => continue, // the watcher retries by itself (server restarting)
            Ok(Some(Ok(ev))) => {
                if pred(&ev) {
                    return Ok(());
                }
            }
        }
    }
}

fn is_apply(ev: &Event<ConfigMap>, name: &str, v: &str) -> bool {
    let hit = |o: &ConfigMap| {
        o.metadata.name.as_deref() == Some(name)
            && o.data.as_ref().and_then(|d| d.get("v")).map(String::as_str) == Some(v)
    };
    match ev {
        Event::Apply(o) | Event::InitApply(o) => hit(o),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_crud_and_watcher_through_restart_and_410() -> Result<()> {
    let mut server = ApiServer::start_with_args(&["--watch-history", "50"]).await?;
    let client = server.client().await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // CRUD.
    let created = api.create(&PostParams::default(), &cm("a", "1")?).await?;
    assert!(created.metadata.resource_version.is_some());
    let got = api.get("a").await?;
    assert_eq!(got.data.unwrap()["v"], "1");
    let patched = api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await?;
    assert_eq!(patched.data.unwrap()["v"], "2");
    let mut stale = created.clone();
    stale.data = Some([("v".to_string(), "3".to_string())].into());
    let err = api.replace("a", &PostParams::default(), &stale).await.unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!(s.code, 409),
        other => bail!("expected a 409 Conflict, got {other}"),
    }

    // A watcher follows changes.
    let mut w = watcher::watcher(api.clone(), watcher::Config::default()).boxed();
    until(&mut w, "initial a=2", |e| is_apply(e, "a", "2") || matches!(e, Event::InitDone)).await?;
    api.create(&PostParams::default(), &cm("b", "1")?).await?;
    until(&mut w, "b created", |e| is_apply(e, "b", "1")).await?;
    api.patch("b", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await?;
    until(&mut w, "b updated", |e| is_apply(e, "b", "2")).await?;
    api.delete("b", &DeleteParams::default()).await?;
    until(&mut w, "b deleted", |e| matches!(e, Event::Delete(o) if o.metadata.name.as_deref() == Some("b"))).await?;

    // Restart: the watcher reconnects; the new server has no watch history, so the
    // resume gets 410 Gone and the watcher relists, seeing what changed meanwhile.
    server.restart().await?;
    let api2: Api<ConfigMap> = Api::namespaced(server.client().await?, "default");
    api2.create(&PostParams::default(), &cm("c", "1")?).await?;
    until(&mut w, "c after restart", |e| is_apply(e, "c", "1")).await?;

    // 410 while running: more writes than the history holds, then resume from an old RV.
    let old_rv = api2.get("c").await?.metadata.resource_version.unwrap_or_default();
    for i in 0..60 {
        api2.create(&PostParams::default(), &cm(&format!("n{i}"), "x")?).await?;
    }
    let lp = kube::api::WatchParams::default();
    let mut raw = api2.watch(&lp, &old_rv).await?.boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), raw.next()).await?;
    match first {
        Some(Ok(kube::api::WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        Some(Err(kube::Error::Api(e))) => assert_eq!(e.code, 410),
        other => bail!("expected 410 Gone, got {other:?}"),
    }
    api2.patch("n59", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "final"}}))).await?;
    until(&mut w, "n59 final", |e| is_apply(e, "n59", "final")).await?;
    Ok(())
}
