//! Event validation, as kube-apiserver's `ValidateEventCreate`/`ValidateEventUpdate`.
//!
//! Both APIs store the same core/v1 Event, so both validate the core form, with the
//! core field names in their messages (`involvedObject`, `message`, `reportingComponent`).
//! Every event passes the legacy checks; one written through `events.k8s.io/v1` also
//! passes the strict ones (`eventTime` set, `type` Normal or Warning, the deprecated
//! fields unset, a valid `series`, and on update everything but `series` and metadata
//! immutable).

use k8s_openapi::api::core::v1::{Event, EventSource};
use knet_apimachinery::field::{FieldError, Path};
use knet_apimachinery::validation as v;

use super::{meta, s};

const REPORTING_INSTANCE_LIMIT: usize = 128;
const ACTION_LIMIT: usize = 128;
const REASON_LIMIT: usize = 128;
const NOTE_LIMIT: usize = 1024;

/// core/v1 Events (`legacyValidateEvent`, plus object metadata).
pub fn validate_event(ev: &Event, old: Option<&Event>) -> Vec<FieldError> {
    let meta_path = Path::new("metadata");
    let mut errs = match old {
        Some(old) => meta::validate_object_meta_update(&ev.metadata, &old.metadata, &meta_path),
        None => meta::validate_object_meta(&ev.metadata, true, v::name_is_dns_subdomain, &meta_path),
    };
    errs.extend(legacy(ev));
    errs
}

/// `legacyValidateEvent`: what every Event, whatever API wrote it, must satisfy.
fn legacy(ev: &Event) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ns = s(&ev.metadata.namespace);
    let involved_ns = s(&ev.involved_object.namespace);
    let ns_path = Path::new("involvedObject").child("namespace");
    let mismatch = "does not match event.namespace";
    if ev.event_time.is_none() {
        let ok = if involved_ns.is_empty() { ns.is_empty() || ns == "default" } else { ns == involved_ns };
        if !ok {
            errs.push(FieldError::invalid(&ns_path, involved_ns, mismatch));
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(FieldError::invalid(&ns_path, involved_ns, mismatch));
        }
        let component = s(&ev.reporting_component);
        if component.is_empty() {
            errs.push(FieldError::required(&Path::new("reportingComponent"), ""));
        }
        errs.extend(meta::qualified_name(component, &Path::new("reportingComponent")));
        for (value, name, limit) in [
            (s(&ev.reporting_instance), "reportingInstance", REPORTING_INSTANCE_LIMIT),
            (s(&ev.action), "action", ACTION_LIMIT),
            (s(&ev.reason), "reason", REASON_LIMIT),
        ] {
            if value.is_empty() {
                errs.push(FieldError::required(&Path::new(name), ""));
            }
            if value.len() > limit {
                errs.push(FieldError::invalid(&Path::new(name), "", format!("can have at most {limit} characters")));
            }
        }
        if s(&ev.message).len() > NOTE_LIMIT {
            errs.push(FieldError::invalid(
                &Path::new("message"),
                "",
                format!("can have at most {NOTE_LIMIT} characters"),
            ));
        }
    }
    errs.extend(meta::each(&Path::new("namespace"), ns, v::is_dns1123_subdomain(ns)));
    errs
}

/// `validateV1EventSeries`.
fn series(ev: &Event) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(series) = &ev.series {
        if series.count.unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(&Path::new("series").child("count"), "", "should be at least 2"));
        }
        if series.last_observed_time.is_none() {
            errs.push(FieldError::required(&Path::new("series").child("lastObservedTime"), ""));
        }
    }
    errs
}

/// An Event's source, unset being Go's zero value.
fn source(ev: &Event) -> EventSource {
    ev.source.clone().unwrap_or_default()
}

/// Events written through `events.k8s.io/v1` (the event in its stored, core form).
pub fn validate_events_v1(ev: &Event, old: Option<&Event>) -> Vec<FieldError> {
    let mut errs = validate_event(ev, old);
    let Some(old) = old else {
        errs.extend(series(ev));
        if ev.event_time.is_none() {
            errs.push(FieldError::required(&Path::new("eventTime"), ""));
        }
        let typ = s(&ev.type_);
        if typ != "Normal" && typ != "Warning" {
            errs.push(FieldError::invalid(&Path::new("type"), "", format!("has invalid value: {typ}")));
        }
        let unset = "needs to be unset";
        if ev.first_timestamp.is_some() {
            errs.push(FieldError::invalid(&Path::new("firstTimestamp"), "", unset));
        }
        if ev.last_timestamp.is_some() {
            errs.push(FieldError::invalid(&Path::new("lastTimestamp"), "", unset));
        }
        if ev.count.unwrap_or(0) != 0 {
            errs.push(FieldError::invalid(&Path::new("count"), "", unset));
        }
        let src = source(ev);
        if !s(&src.component).is_empty() || !s(&src.host).is_empty() {
            errs.push(FieldError::invalid(&Path::new("source"), "", unset));
        }
        return errs;
    };
    if ev.series != old.series {
        errs.extend(series(ev));
    }
    let p = Path::new;
    errs.extend(meta::immutable(&ev.involved_object, &old.involved_object, &p("involvedObject")));
    errs.extend(meta::immutable_str(&ev.reason, &old.reason, &p("reason")));
    errs.extend(meta::immutable_str(&ev.message, &old.message, &p("message")));
    errs.extend(meta::immutable(&source(ev), &source(old), &p("source")));
    errs.extend(meta::immutable(&ev.first_timestamp, &old.first_timestamp, &p("firstTimestamp")));
    errs.extend(meta::immutable(&ev.last_timestamp, &old.last_timestamp, &p("lastTimestamp")));
    errs.extend(meta::immutable(&ev.count.unwrap_or(0), &old.count.unwrap_or(0), &p("count")));
    errs.extend(meta::immutable_str(&ev.type_, &old.type_, &p("type")));
    errs.extend(meta::immutable(&ev.event_time, &old.event_time, &p("eventTime")));
    errs.extend(meta::immutable_str(&ev.action, &old.action, &p("action")));
    errs.extend(meta::immutable(&ev.related, &old.related, &p("related")));
    errs.extend(meta::immutable_str(&ev.reporting_component, &old.reporting_component, &p("reportingComponent")));
    errs.extend(meta::immutable_str(&ev.reporting_instance, &old.reporting_instance, &p("reportingInstance")));
    errs
}

#[cfg(test)]
mod tests;
