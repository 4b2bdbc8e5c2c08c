//! events.k8s.io/v1 and core/v1 Events are two views of one stored object: what a controller publishes
//! with kube-rs' `Recorder` is what the real kubectl shows in `describe` and `get events`, and a watch
//! on either API sees writes made through the other.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Event as CoreEvent, Pod};
use k8s_openapi::api::events::v1::Event as V1Event;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Resource;
use serde_json::json;
use xtests::ApiServer;

async fn pod(api: &Api<Pod>, name: &str) -> Result<Pod> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
    }))?;
    Ok(api.create(&PostParams::default(), &pod).await?)
}

/// The next ADDED event of a watch whose object satisfies `pred`, within 10 s.
async fn added<K, S>(stream: &mut S, mut pred: impl FnMut(&K) -> bool) -> Result<K>
where
    S: Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => bail!("no matching ADDED event within 10 s"),
            Ok(None) => bail!("the watch ended"),
            Ok(Some(ev)) => {
                if let WatchEvent::Added(obj) = ev? {
                    if pred(&obj) {
                        return Ok(obj);
                    }
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_series_shows_in_kubectl_describe_and_get_events() -> Result<()> {
    let server = ApiServer::start().await?;
    let client = server.client().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let web = pod(&pods, "web").await?;
    let recorder =
        Recorder::new(client.clone(), Reporter { controller: "knet-scheduler".into(), instance: Some("cp".into()) });
    let event = Event {
        type_: EventType::Normal,
        reason: "Scheduled".into(),
        note: Some("Successfully assigned default/web to worker-1".into()),
        action: "Binding".into(),
        secondary: None,
    };
    let reference = web.object_ref(&());
    recorder.publish(&event, &reference).await.context("first publish (create)")?;
    recorder.publish(&event, &reference).await.context("second publish (series merge patch)")?;

    let kubectl = server.kubectl();
    let describe = kubectl.run(&["describe", "pod", "web"])?.ok()?.stdout;
    let line = describe
        .lines()
        .find(|l| l.contains("Scheduled"))
        .with_context(|| format!("no Scheduled event in describe:\n{describe}"))?;
    for want in ["Normal", "Scheduled", "(x2 over", "knet-scheduler", "Successfully assigned default/web to worker-1"] {
        assert!(line.contains(want), "{want:?} missing from the event line {line:?} of:\n{describe}");
    }

    let get = kubectl.run(&["get", "events"])?.ok()?.stdout;
    let header = get.lines().next().unwrap_or_default();
    assert!(header.contains("LAST SEEN") && header.contains("REASON") && header.contains("OBJECT"), "{get}");
    assert!(
        get.lines().any(|l| l.contains("Scheduled") && l.contains("pod/web") && l.contains("Successfully assigned")),
        "kubectl get events:\n{get}"
    );
    let get_v1 = kubectl.run(&["get", "events.events.k8s.io", "-o", "wide"])?.ok()?.stdout;
    assert!(
        get_v1.lines().any(|l| l.contains("Scheduled") && l.contains("pod/web") && l.contains("knet-scheduler")),
        "kubectl get events.events.k8s.io -o wide:\n{get_v1}"
    );
    let for_pod = kubectl.run(&["events", "--for", "pod/web"])?.ok()?.stdout;
    assert!(for_pod.contains("Scheduled") && for_pod.contains("(x2 over"), "kubectl events --for pod/web:\n{for_pod}");

    // Both APIs read the same object.
    let v1: Api<V1Event> = Api::namespaced(client.clone(), "default");
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let listed = v1.list(&Default::default()).await?;
    let recorded = listed.items.iter().find(|e| e.reason.as_deref() == Some("Scheduled")).context("no v1 event")?;
    let name = recorded.metadata.name.clone().context("unnamed event")?;
    assert_eq!(recorded.series.as_ref().map(|s| s.count), Some(2));
    let same = core.get(&name).await?;
    assert_eq!(same.involved_object.uid, web.metadata.uid);
    assert_eq!(same.reporting_component.as_deref(), Some("knet-scheduler"));
    assert_eq!(same.series.and_then(|s| s.count), Some(2));
    assert_eq!(same.metadata.resource_version, recorded.metadata.resource_version);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_on_either_api_see_writes_through_the_other() -> Result<()> {
    let server = ApiServer::start().await?;
    let client = server.client().await?;
    let v1: Api<V1Event> = Api::namespaced(client.clone(), "default");
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let rv = core.list(&Default::default()).await?.metadata.resource_version.unwrap_or_default();
    let mut core_watch = core.watch(&WatchParams::default(), &rv).await?.boxed();
    let mut v1_watch = v1.watch(&WatchParams::default(), &rv).await?.boxed();

    let new_style: V1Event = serde_json::from_value(json!({
        "metadata": {"name": "from-v1"},
        "regarding": {"kind": "Node", "name": "worker-1", "apiVersion": "v1"},
        "eventTime": "2025-01-02T03:04:05.000000Z",
        "reason": "NodeReady", "action": "Heartbeat", "type": "Normal", "note": "ready",
        "reportingController": "knet-node-agent", "reportingInstance": "worker-1"
    }))?;
    v1.create(&PostParams::default(), &new_style).await?;
    let seen = added(&mut core_watch, |e: &CoreEvent| e.metadata.name.as_deref() == Some("from-v1")).await?;
    assert_eq!(seen.involved_object.name.as_deref(), Some("worker-1"));
    assert_eq!(seen.message.as_deref(), Some("ready"));

    let old_style: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "from-core"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Killing", "message": "Stopping container nginx", "type": "Normal", "count": 1,
        "source": {"component": "kubelet", "host": "worker-1"}
    }))?;
    core.create(&PostParams::default(), &old_style).await?;
    let seen = added(&mut v1_watch, |e: &V1Event| e.metadata.name.as_deref() == Some("from-core")).await?;
    assert_eq!(seen.regarding.and_then(|r| r.name).as_deref(), Some("web"));
    assert_eq!(seen.note.as_deref(), Some("Stopping container nginx"));
    assert_eq!(seen.deprecated_source.and_then(|s| s.component).as_deref(), Some("kubelet"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_events_v1_event_is_422_with_upstreams_message() -> Result<()> {
    let server = ApiServer::start().await?;
    let v1: Api<V1Event> = Api::namespaced(server.client().await?, "default");
    // No eventTime, and a type that is neither Normal nor Warning.
    let bad: V1Event = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Oops", "action": "Doing", "type": "Fatal", "reportingInstance": "x"
    }))?;
    let err = match v1.create(&PostParams::default(), &bad).await {
        Ok(_) => bail!("an events.k8s.io event without eventTime was accepted"),
        Err(kube::Error::Api(s)) => s,
        Err(e) => return Err(e.into()),
    };
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    assert_eq!(
        err.message,
        "Event \"bad\" is invalid: [eventTime: Required value, type: Invalid value: \"\": has invalid value: Fatal]"
    );
    // The same event is a fine core/v1 event (only the events.k8s.io API is strict).
    let core: Api<CoreEvent> = Api::namespaced(server.client().await?, "default");
    let legacy: CoreEvent = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "Oops", "type": "Fatal"
    }))?;
    core.create(&PostParams::default(), &legacy).await?;
    Ok(())
}
