//! Printers of the replicated workloads: deployments, replicasets and
//! replicationcontrollers (DESIRED/CURRENT/READY or READY/UP-TO-DATE/AVAILABLE, and
//! wide CONTAINERS, IMAGES, SELECTOR).

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ReplicationController;
use serde_json::json;

use super::format::{containers, format_selector, labels, selector_string, since_time};
use super::{col, typed, Column, Doc, Printer, Row, RowFn, AGE, NAME};

pub(super) fn printer(group: &str, plural: &str) -> Option<Printer> {
    let (columns, row): (&'static [Column], RowFn) = match (group, plural) {
        ("apps", "deployments") => (DEPLOYMENT, |v, now| typed(v, now, deployment)),
        ("apps", "replicasets") => (REPLICA_SET, |v, now| typed(v, now, replica_set)),
        ("", "replicationcontrollers") => (REPLICATION_CONTROLLER, |v, now| typed(v, now, replication_controller)),
        _ => return None,
    };
    Some(Printer { columns, row })
}

const CONTAINERS: Column = col("Containers", "string", 1, Doc::Text("Names of each container in the template."));
const IMAGES: Column = col("Images", "string", 1, Doc::Text("Images referenced by each container in the template."));

const DEPLOYMENT: &[Column] = &[
    NAME,
    col("Ready", "string", 0, Doc::Text("Number of the pod with ready state")),
    col("Up-to-date", "string", 0, Doc::Field("io.k8s.api.apps.v1.DeploymentStatus", "updatedReplicas")),
    col("Available", "string", 0, Doc::Field("io.k8s.api.apps.v1.DeploymentStatus", "availableReplicas")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, Doc::Field("io.k8s.api.apps.v1.DeploymentSpec", "selector")),
];

fn deployment(d: &Deployment, now: Timestamp) -> Row {
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let (names, images) = containers(spec.template.spec.as_ref().map(|s| &s.containers));
    let selector = selector_string(Some(&spec.selector)).unwrap_or_else(|_| "<invalid>".into());
    Row::new(vec![
        json!(d.metadata.name.clone().unwrap_or_default()),
        json!(format!("{}/{}", status.ready_replicas.unwrap_or(0), spec.replicas.unwrap_or(1))),
        json!(status.updated_replicas.unwrap_or(0)),
        json!(status.available_replicas.unwrap_or(0)),
        json!(since_time(d.metadata.creation_timestamp.as_ref(), now)),
        json!(names),
        json!(images),
        json!(selector),
    ])
}

const RS_SPEC: &str = "io.k8s.api.apps.v1.ReplicaSetSpec";
const RS_STATUS: &str = "io.k8s.api.apps.v1.ReplicaSetStatus";

const REPLICA_SET: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, Doc::Field(RS_SPEC, "replicas")),
    col("Current", "integer", 0, Doc::Field(RS_STATUS, "replicas")),
    col("Ready", "integer", 0, Doc::Field(RS_STATUS, "readyReplicas")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, Doc::Field(RS_SPEC, "selector")),
];

fn replica_set(rs: &ReplicaSet, now: Timestamp) -> Row {
    let spec = rs.spec.clone().unwrap_or_default();
    let status = rs.status.clone().unwrap_or_default();
    let (names, images) = containers(spec.template.as_ref().and_then(|t| t.spec.as_ref()).map(|s| &s.containers));
    Row::new(vec![
        json!(rs.metadata.name.clone().unwrap_or_default()),
        json!(spec.replicas.unwrap_or(1)),
        json!(status.replicas),
        json!(status.ready_replicas.unwrap_or(0)),
        json!(since_time(rs.metadata.creation_timestamp.as_ref(), now)),
        json!(names),
        json!(images),
        json!(format_selector(Some(&spec.selector))),
    ])
}

const RC_SPEC: &str = "io.k8s.api.core.v1.ReplicationControllerSpec";
const RC_STATUS: &str = "io.k8s.api.core.v1.ReplicationControllerStatus";

const REPLICATION_CONTROLLER: &[Column] = &[
    NAME,
    col("Desired", "integer", 0, Doc::Field(RC_SPEC, "replicas")),
    col("Current", "integer", 0, Doc::Field(RC_STATUS, "replicas")),
    col("Ready", "integer", 0, Doc::Field(RC_STATUS, "readyReplicas")),
    AGE,
    CONTAINERS,
    IMAGES,
    col("Selector", "string", 1, Doc::Field(RC_SPEC, "selector")),
];

fn replication_controller(rc: &ReplicationController, now: Timestamp) -> Row {
    let spec = rc.spec.clone().unwrap_or_default();
    let status = rc.status.clone().unwrap_or_default();
    let (names, images) = containers(spec.template.as_ref().and_then(|t| t.spec.as_ref()).map(|s| &s.containers));
    Row::new(vec![
        json!(rc.metadata.name.clone().unwrap_or_default()),
        json!(spec.replicas.unwrap_or(1)),
        json!(status.replicas),
        json!(status.ready_replicas.unwrap_or(0)),
        json!(since_time(rc.metadata.creation_timestamp.as_ref(), now)),
        json!(names),
        json!(images),
        json!(labels(spec.selector.as_ref())),
    ])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::tables::testutil::{ago, cells, columns};

    fn template() -> serde_json::Value {
        json!({"metadata": {"labels": {"run": "my-nginx"}}, "spec": {"containers": [
            {"name": "my-nginx", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "sidecar", "image": "busybox"}]}})
    }

    #[test]
    fn deployment_ready_up_to_date_available() {
        let cols = columns("apps", "deployments");
        assert_eq!(
            cols,
            [
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ]
            .map(|(n, p)| (n.to_string(), p))
        );
        let d = json!({
            "metadata": {"name": "my-nginx", "creationTimestamp": ago(3 * 3600)},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"run": "my-nginx"}}, "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}
        });
        assert_eq!(
            cells("apps", "deployments", d),
            json!(["my-nginx", "1/2", 2, 1, "3h", "my-nginx,sidecar", "nginx,busybox", "run=my-nginx"])
                .as_array()
                .cloned()
                .unwrap_or_default()
        );
        let fresh = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3, "selector": {}, "template": template()}});
        let c = cells("apps", "deployments", fresh);
        assert_eq!((&c[1], &c[2], &c[3], &c[7]), (&json!("0/3"), &json!(0), &json!(0), &json!("")));
    }

    #[test]
    fn replica_set_and_replication_controller() {
        let rs = json!({
            "metadata": {"name": "my-nginx-5b56ccd65f", "creationTimestamp": ago(60)},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"run": "my-nginx", "pod-template-hash": "5b56ccd65f"}}, "template": template()},
            "status": {"replicas": 2, "readyReplicas": 2}
        });
        assert_eq!(
            cells("apps", "replicasets", rs),
            json!([
                "my-nginx-5b56ccd65f",
                2,
                2,
                2,
                "60s",
                "my-nginx,sidecar",
                "nginx,busybox",
                "pod-template-hash=5b56ccd65f,run=my-nginx"
            ])
            .as_array()
            .cloned()
            .unwrap_or_default()
        );
        let rc = json!({
            "metadata": {"name": "my-nginx", "creationTimestamp": ago(60)},
            "spec": {"replicas": 2, "selector": {"app": "nginx"}, "template": template()},
            "status": {"replicas": 1}
        });
        assert_eq!(
            cells("", "replicationcontrollers", rc),
            json!(["my-nginx", 2, 1, 0, "60s", "my-nginx,sidecar", "nginx,busybox", "app=nginx"])
                .as_array()
                .cloned()
                .unwrap_or_default()
        );
        let bare = json!({"metadata": {"name": "rc"}, "status": {"replicas": 0}});
        let c = cells("", "replicationcontrollers", bare);
        assert_eq!((&c[1], &c[5], &c[7]), (&json!(1), &json!(""), &json!("<none>")));
    }
}
