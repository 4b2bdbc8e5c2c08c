//! A Pod's quality-of-service class (`status.qosClass`), as kube-apiserver records it on create and the kubelet
//! reports it: computed from the cpu and memory requests and limits of all its containers (init ones too).

use k8s_openapi::api::core::v1::PodSpec;

/// The resources the QoS class looks at.
const COMPUTE: [&str; 2] = ["cpu", "memory"];

/// `BestEffort` when no container requests or limits cpu or memory; `Guaranteed` when every container has cpu
/// and memory limits equal to its requests (a missing request counts as its limit, as defaulting makes it);
/// else `Burstable`. Quantities are compared by value ("1" equals "1000m").
pub fn pod_qos_class(spec: &PodSpec) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let resources = c.resources.as_ref();
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        for name in COMPUTE {
            let (request, limit) = (requests.and_then(|r| r.get(name)), limits.and_then(|l| l.get(name)));
            any |= request.is_some() || limit.is_some();
            match (request, limit) {
                (_, None) => guaranteed = false,
                (Some(request), Some(limit)) if !same_quantity(&request.0, &limit.0) => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn same_quantity(a: &str, b: &str) -> bool {
    match (crate::quantity::parse_milli(a), crate::quantity::parse_milli(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn qos(containers: serde_json::Value, init: serde_json::Value) -> &'static str {
        let spec: PodSpec =
            serde_json::from_value(json!({"containers": containers, "initContainers": init})).expect("a PodSpec");
        pod_qos_class(&spec)
    }

    #[test]
    fn classes_follow_cpu_and_memory_requests_and_limits() {
        let full = json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(qos(json!([{"name": "a"}]), json!([])), "BestEffort");
        assert_eq!(
            qos(json!([{"name": "a", "resources": {"limits": {"ephemeral-storage": "1Gi"}}}]), json!([])),
            "BestEffort"
        );
        assert_eq!(qos(json!([{"name": "a", "resources": full}]), json!([])), "Guaranteed");
        // Limits alone: the requests default to them.
        assert_eq!(
            qos(json!([{"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]), json!([])),
            "Guaranteed"
        );
        assert_eq!(qos(json!([{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]), json!([])), "Burstable");
        let unequal = json!({"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}});
        assert_eq!(qos(json!([{"name": "a", "resources": unequal}]), json!([])), "Burstable");
        let same = json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}});
        assert_eq!(qos(json!([{"name": "a", "resources": same}]), json!([])), "Guaranteed");
        // Every container counts, init containers too.
        assert_eq!(qos(json!([{"name": "a", "resources": full}]), json!([{"name": "i"}])), "Burstable");
        assert_eq!(
            qos(json!([{"name": "a"}]), json!([{"name": "i", "resources": {"requests": {"memory": "1Mi"}}}])),
            "Burstable"
        );
    }
}
