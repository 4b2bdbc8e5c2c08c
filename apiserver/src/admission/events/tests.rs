use serde_json::json;

use super::*;

fn strings(errs: Vec<FieldError>) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn event(v: serde_json::Value) -> Event {
    serde_json::from_value(v).unwrap_or_default()
}

/// What kube-rs' `Recorder` creates, in the stored (core) form.
fn recorded() -> serde_json::Value {
    json!({
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "eventTime": "2025-01-02T03:04:05.000001Z",
        "reason": "Scheduled", "action": "Binding", "type": "Normal", "message": "assigned",
        "reportingComponent": "knet-scheduler", "reportingInstance": "knet-scheduler-1"
    })
}

#[test]
fn legacy_events_check_the_involved_namespace() {
    let ev = event(json!({
        "metadata": {"name": "web.17a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "other"},
        "reason": "Started"
    }));
    assert_eq!(
        strings(validate_event(&ev, None)),
        ["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]
    );
    assert!(validate_event(&event(recorded()), None).is_empty());
}

#[test]
fn events_v1_creates_are_strict() {
    assert!(validate_events_v1(&event(recorded()), None).is_empty());
    let mut bad = recorded();
    let m = bad.as_object_mut().unwrap();
    m.remove("eventTime");
    m.remove("reportingComponent");
    m.insert("type".into(), json!("Fatal"));
    m.insert("count".into(), json!(3));
    m.insert("source".into(), json!({"component": "kubelet"}));
    m.insert("series".into(), json!({"count": 1}));
    m.insert("firstTimestamp".into(), json!("2025-01-02T03:04:05Z"));
    assert_eq!(
        strings(validate_events_v1(&event(bad), None)),
        [
            "series.count: Invalid value: \"\": should be at least 2",
            "series.lastObservedTime: Required value",
            "eventTime: Required value",
            "type: Invalid value: \"\": has invalid value: Fatal",
            "firstTimestamp: Invalid value: \"\": needs to be unset",
            "count: Invalid value: \"\": needs to be unset",
            "source: Invalid value: \"\": needs to be unset",
        ]
    );
    // Without eventTime the legacy checks do not ask for the reporting fields: the strict ones catch it.
    let mut no_controller = recorded();
    no_controller.as_object_mut().unwrap().remove("reportingComponent");
    assert_eq!(
        strings(validate_events_v1(&event(no_controller), None)),
        [
            "reportingComponent: Required value",
            "reportingComponent: Invalid value: \"\": name part must be non-empty",
            "reportingComponent: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ]
    );
}

#[test]
fn events_v1_updates_may_only_change_the_series() {
    let old = event(recorded());
    let mut next = recorded();
    next["series"] = json!({"count": 2, "lastObservedTime": "2025-01-02T03:05:05.000000Z"});
    assert!(validate_events_v1(&event(next.clone()), Some(&old)).is_empty(), "a series patch is fine");
    next["message"] = json!("changed");
    next["series"] = json!({"count": 1, "lastObservedTime": "2025-01-02T03:05:05.000000Z"});
    assert_eq!(
        strings(validate_events_v1(&event(next), Some(&old))),
        [
            "series.count: Invalid value: \"\": should be at least 2",
            "message: Invalid value: \"changed\": field is immutable",
        ]
    );
    // The core API has no such rule.
    let mut core = recorded();
    core["message"] = json!("changed");
    assert!(validate_event(&event(core), Some(&old)).is_empty());
}
