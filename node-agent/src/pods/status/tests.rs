use super::*;
use serde_json::json;

fn pod(policy: &str, init: &[&str], containers: &[&str]) -> Pod {
    let c = |n: &&str| json!({"name": n, "image": "busybox"});
    serde_json::from_value(json!({
        "metadata": {"name": "p", "namespace": "default", "uid": "u", "generation": 1},
        "spec": {
            "restartPolicy": policy,
            "initContainers": init.iter().map(c).collect::<Vec<_>>(),
            "containers": containers.iter().map(c).collect::<Vec<_>>(),
        },
        "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]}
    }))
    .unwrap()
}

fn t(s: &str) -> Time {
    Time(s.parse().unwrap())
}

fn running(name: &str, ready: bool) -> CView {
    CView {
        name: name.into(),
        image: "busybox".into(),
        state: CState::Running { started_at: t("2025-01-01T00:00:01Z") },
        last_state: None,
        ready,
        started: true,
        restart_count: 0,
        container_id: Some("abc".into()),
    }
}

fn exited(name: &str, code: i32) -> CView {
    CView {
        state: CState::Terminated(Terminated {
            exit_code: code,
            signal: None,
            reason: if code == 0 { "Completed".into() } else { "Error".into() },
            message: None,
            started_at: Some(t("2025-01-01T00:00:01Z")),
            finished_at: t("2025-01-01T00:00:02Z"),
            container_id: Some("abc".into()),
        }),
        ready: false,
        ..running(name, false)
    }
}

fn waiting(name: &str, reason: &str) -> CView {
    CView {
        state: CState::Waiting { reason: reason.into(), message: None },
        ready: false,
        started: false,
        container_id: None,
        ..running(name, false)
    }
}

fn input<'a>(pod: &'a Pod, init: Vec<CView>, containers: Vec<CView>, ips: &'a [IpAddr]) -> StatusInput<'a> {
    StatusInput {
        pod,
        init,
        containers,
        sandbox_ready: true,
        pod_ips: ips,
        host_ips: &ips[1..],
        start_time: Some(t("2025-01-01T00:00:00Z")),
        failure: None,
        terminal: false,
        now: t("2025-01-01T00:00:05Z"),
    }
}

fn cond<'a>(s: &'a PodStatus, ty: &str) -> &'a PodCondition {
    s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == ty).unwrap()
}

#[test]
fn phases_follow_kubelet() {
    let ips: Vec<IpAddr> = vec!["10.244.0.5".parse().unwrap(), "192.168.56.11".parse().unwrap()];
    let always = pod("Always", &[], &["a", "b"]);
    assert_eq!(
        phase(&input(&always, vec![], vec![running("a", true), waiting("b", "ContainerCreating")], &ips)),
        "Pending"
    );
    assert_eq!(phase(&input(&always, vec![], vec![running("a", true), running("b", true)], &ips)), "Running");
    let mut crash = waiting("b", "CrashLoopBackOff");
    crash.last_state = Some(match exited("b", 1).state {
        CState::Terminated(t) => t,
        _ => unreachable!(),
    });
    assert_eq!(phase(&input(&always, vec![], vec![running("a", true), crash], &ips)), "Running");
    let never = pod("Never", &[], &["a"]);
    assert_eq!(phase(&input(&never, vec![], vec![exited("a", 0)], &ips)), "Succeeded");
    assert_eq!(phase(&input(&never, vec![], vec![exited("a", 2)], &ips)), "Failed");
    let onf = pod("OnFailure", &[], &["a"]);
    assert_eq!(phase(&input(&onf, vec![], vec![exited("a", 2)], &ips)), "Running");
    let with_init = pod("Always", &["i"], &["a"]);
    assert_eq!(
        phase(&input(&with_init, vec![running("i", false)], vec![waiting("a", "PodInitializing")], &ips)),
        "Pending"
    );
    let never_init = pod("Never", &["i"], &["a"]);
    assert_eq!(phase(&input(&never_init, vec![exited("i", 1)], vec![waiting("a", "PodInitializing")], &ips)), "Failed");
    let mut deleted = input(&always, vec![], vec![exited("a", 137), exited("b", 0)], &ips);
    deleted.terminal = true;
    assert_eq!(phase(&deleted), "Failed");
}

#[test]
fn renders_conditions_ips_and_container_statuses() {
    let ips: Vec<IpAddr> = vec!["10.244.0.5".parse().unwrap(), "192.168.56.11".parse().unwrap()];
    let p = pod("Always", &["init"], &["web", "side"]);
    let s = render(
        &input(&p, vec![exited("init", 0)], vec![running("web", true), running("side", false)], &ips),
        p.status.as_ref(),
    );
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.5"));
    assert_eq!(s.host_ip.as_deref(), Some("192.168.56.11"));
    assert_eq!(s.pod_ips.as_ref().unwrap()[0].ip, "10.244.0.5");
    assert_eq!(cond(&s, "Initialized").status, "True");
    let ready = cond(&s, "Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("ContainersNotReady")));
    assert_eq!(ready.message.as_deref(), Some("containers with unready status: [side]"));
    assert_eq!(cond(&s, "PodScheduled").status, "True", "others' conditions stay");
    let web = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(web.container_id.as_deref(), Some("knet://abc"));
    assert_eq!(web.image, "docker.io/library/busybox:latest");
    assert_eq!(web.started, Some(true));
    assert_eq!(
        s.init_container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("Completed")
    );
    assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
    assert_eq!(s.observed_generation, Some(1));

    // All ready later: the Ready transition moves, PodReadyToStartContainers keeps its time.
    let mut later = input(&p, vec![exited("init", 0)], vec![running("web", true), running("side", true)], &ips);
    later.now = t("2025-01-01T00:01:00Z");
    let s2 = render(&later, Some(&s));
    assert_eq!(cond(&s2, "Ready").status, "True");
    assert_eq!(cond(&s2, "Ready").last_transition_time, Some(t("2025-01-01T00:01:00Z")));
    assert_eq!(cond(&s2, "PodReadyToStartContainers").last_transition_time, Some(t("2025-01-01T00:00:05Z")));
}

#[test]
fn completed_and_failed_pods() {
    let ips: Vec<IpAddr> = vec!["10.244.0.5".parse().unwrap(), "192.168.56.11".parse().unwrap()];
    let p = pod("Never", &[], &["cat-hosts"]);
    let s = render(&input(&p, vec![], vec![exited("cat-hosts", 0)], &ips), None);
    assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
    let mut failed = input(&p, vec![], vec![waiting("cat-hosts", "UnsupportedImage")], &ips);
    failed.failure = Some(("UnsupportedImage".into(), "image \"x\" is not in knet's image catalog".into()));
    let s = render(&failed, None);
    assert_eq!((s.phase.as_deref(), s.reason.as_deref()), (Some("Failed"), Some("UnsupportedImage")));
}

#[test]
fn qos_classes() {
    let mut p = pod("Always", &[], &["a"]);
    assert_eq!(qos_class(&p), "BestEffort");
    let c = &mut p.spec.as_mut().unwrap().containers[0];
    c.resources = Some(
        serde_json::from_value(
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}),
        )
        .unwrap(),
    );
    assert_eq!(qos_class(&p), "Guaranteed");
    p.spec.as_mut().unwrap().containers[0].resources =
        Some(serde_json::from_value(json!({"requests": {"cpu": "100m"}})).unwrap());
    assert_eq!(qos_class(&p), "Burstable");
}
