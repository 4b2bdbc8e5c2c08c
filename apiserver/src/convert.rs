//! Conversion between a resource's stored form and another API version that views it.
//!
//! kube-apiserver stores one object per kind and converts it to whichever version a
//! request names. knet stores most kinds in their one served version; the exception is
//! `events.k8s.io/v1` Event, a second view of the stored core/v1 Events, so that an
//! event a controller publishes through events.k8s.io is what `kubectl describe` reads
//! through core/v1, and a watch on either API sees writes made through the other.
//!
//! The field mapping is upstream's (`pkg/apis/events/v1` conversion): `regarding` ↔
//! `involvedObject`, `note` ↔ `message`, `reportingController` ↔ `reportingComponent`,
//! `deprecatedSource` ↔ `source`, `deprecatedFirstTimestamp` ↔ `firstTimestamp`,
//! `deprecatedLastTimestamp` ↔ `lastTimestamp`, `deprecatedCount` ↔ `count`; the other
//! fields (`eventTime`, `series`, `related`, `action`, `reason`, `type`,
//! `reportingInstance`, `metadata`) keep their names. The conversion works on JSON, so
//! nothing a field holds (a partial `series` that validation must report, say) is lost
//! on the way.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::registry::cache::Obj;
use crate::resources::ResourceInfo;

/// `(events.k8s.io/v1 name, core/v1 name)` of every Event field besides type meta and metadata.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("related", "related"),
    ("action", "action"),
    ("reason", "reason"),
    ("type", "type"),
    ("reportingInstance", "reportingInstance"),
];

/// The field selector labels of events.k8s.io/v1 Events and the stored (core/v1) labels they select on.
const EVENT_FIELD_LABELS: &[(&str, &str)] = &[
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    ("regarding.resourceVersion", "involvedObject.resourceVersion"),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
    ("reportingController", "reportingComponent"),
];

fn is_events_v1(res: &ResourceInfo) -> bool {
    res.group == "events.k8s.io" && res.plural == "events"
}

/// Whether `res` is a view of another resource's stored objects (and so needs converting).
pub fn is_view(res: &ResourceInfo) -> bool {
    res.stored_as.is_some()
}

/// Renames the top-level fields of `obj` by `pairs` (`from` → `to`), sets its type meta, and
/// drops fields that have no counterpart.
fn rename(
    obj: Value,
    api_version: &str,
    kind: &str,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
) -> Value {
    let Value::Object(mut from) = obj else { return obj };
    let mut out = Map::new();
    out.insert("kind".into(), Value::String(kind.into()));
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    if let Some(meta) = from.remove("metadata") {
        out.insert("metadata".into(), meta);
    }
    for (a, b) in pairs {
        if let Some(v) = from.remove(a) {
            out.insert(b.into(), v);
        }
    }
    Value::Object(out)
}

/// An object of the view `res` in its stored form (identity unless `res` [`is_view`]).
pub fn to_storage(res: &ResourceInfo, view: Value) -> Value {
    if !is_events_v1(res) {
        return view;
    }
    let mut stored = rename(view, "v1", "Event", EVENT_FIELDS.iter().copied());
    // core/v1 always carries involvedObject (a struct, not a pointer, in Go).
    if let Value::Object(m) = &mut stored {
        m.entry("involvedObject").or_insert_with(|| Value::Object(Map::new()));
    }
    stored
}

/// A stored object as the view `res` shows it (identity unless `res` [`is_view`]).
pub fn to_view(res: &ResourceInfo, stored: Value) -> Value {
    if !is_events_v1(res) {
        return stored;
    }
    rename(stored, &res.api_version(), res.kind, EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)))
}

/// [`to_view`] of a shared, cached object: the same `Arc` when nothing changes.
pub fn obj_to_view(res: &ResourceInfo, obj: &Arc<Obj>) -> Arc<Obj> {
    if !is_view(res) {
        return obj.clone();
    }
    Arc::new(Obj::new(to_view(res, obj.value.clone())))
}

/// The stored field a field selector label of `res` selects on (the label itself for most).
pub fn stored_field_label<'a>(res: &ResourceInfo, label: &'a str) -> &'a str {
    if !is_events_v1(res) {
        return label;
    }
    EVENT_FIELD_LABELS.iter().find(|(view, _)| *view == label).map_or(label, |(_, stored)| stored)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::resources;

    fn events_v1() -> &'static ResourceInfo {
        resources::find("events.k8s.io", "v1", "events").expect("events.k8s.io is served")
    }

    fn full_v1_event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "p.1", "namespace": "default", "resourceVersion": "7"},
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "u1"},
            "related": {"kind": "Node", "name": "n1"},
            "note": "Successfully assigned default/p to n1",
            "reason": "Scheduled",
            "action": "Binding",
            "type": "Normal",
            "eventTime": "2025-01-02T03:04:05.123456Z",
            "series": {"count": 2, "lastObservedTime": "2025-01-02T03:05:05.000000Z"},
            "reportingController": "default-scheduler",
            "reportingInstance": "default-scheduler-cp",
            "deprecatedSource": {"component": "kubelet", "host": "n1"},
            "deprecatedFirstTimestamp": "2025-01-02T03:04:05Z",
            "deprecatedLastTimestamp": "2025-01-02T03:05:05Z",
            "deprecatedCount": 3
        })
    }

    #[test]
    fn events_v1_maps_onto_core_v1_field_by_field() {
        let core = to_storage(events_v1(), full_v1_event());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["kind"], "Event");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "Successfully assigned default/p to n1");
        assert_eq!(core["reportingComponent"], "default-scheduler");
        assert_eq!(core["reportingInstance"], "default-scheduler-cp");
        assert_eq!(core["source"], json!({"component": "kubelet", "host": "n1"}));
        assert_eq!(core["firstTimestamp"], "2025-01-02T03:04:05Z");
        assert_eq!(core["lastTimestamp"], "2025-01-02T03:05:05Z");
        assert_eq!(core["count"], 3);
        assert_eq!(core["series"]["count"], 2);
        assert_eq!(core["related"]["name"], "n1");
        assert_eq!(core["metadata"]["resourceVersion"], "7");
        for gone in ["regarding", "note", "reportingController", "deprecatedSource", "deprecatedCount"] {
            assert!(core.get(gone).is_none(), "{gone} left in the core form: {core}");
        }
    }

    #[test]
    fn the_round_trip_is_lossless() {
        let v1 = full_v1_event();
        assert_eq!(to_view(events_v1(), to_storage(events_v1(), v1.clone())), v1);
    }

    #[test]
    fn a_core_event_without_new_fields_views_without_them_and_fields_of_neither_go() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "m", "count": 1, "bogus": true});
        let v1 = to_view(events_v1(), core);
        assert_eq!(
            v1,
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
                "regarding": {"kind": "Pod", "name": "p"}, "note": "m", "deprecatedCount": 1})
        );
        let back = to_storage(events_v1(), json!({"metadata": {"name": "e"}, "involvedObject": {"name": "x"}}));
        assert_eq!(back["involvedObject"], json!({}), "a core field name in a v1 body is not a v1 field");
    }

    #[test]
    fn other_resources_are_not_converted() {
        let svc = resources::find("", "v1", "services").expect("services");
        let v = json!({"apiVersion": "v1", "kind": "Service", "spec": {}});
        assert_eq!(to_storage(svc, v.clone()), v);
        assert_eq!(to_view(svc, v.clone()), v);
        assert_eq!(stored_field_label(svc, "spec.x"), "spec.x");
        assert_eq!(stored_field_label(events_v1(), "regarding.name"), "involvedObject.name");
        assert_eq!(stored_field_label(events_v1(), "type"), "type");
    }
}
