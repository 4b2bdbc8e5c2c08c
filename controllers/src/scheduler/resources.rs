//! Resource quantities for the scheduler: parsing Kubernetes quantities ("100m", "2", "4Gi", "1e3"), what a
//! pod requests (upstream's `PodRequests`: the sum of its containers, at least its largest init container,
//! plus overhead) and what a node offers (`status.allocatable`). Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// CPU a container without a CPU request counts as when scoring (upstream's `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory a container without a memory request counts as when scoring (upstream's `DefaultMemoryRequest`).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// CPU in millicores and memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Millicores.
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
}

impl Resources {
    /// The sum of `self` and `other` (saturating).
    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_add(other.milli_cpu),
            memory: self.memory.saturating_add(other.memory),
        }
    }

    /// `self` less `other` (saturating).
    pub fn minus(self, other: Resources) -> Resources {
        Resources {
            milli_cpu: self.milli_cpu.saturating_sub(other.milli_cpu),
            memory: self.memory.saturating_sub(other.memory),
        }
    }

    /// The larger of each resource.
    pub fn max(self, other: Resources) -> Resources {
        Resources { milli_cpu: self.milli_cpu.max(other.milli_cpu), memory: self.memory.max(other.memory) }
    }
}

pub use knet_apimachinery::quantity::parse_milli;

fn to_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// CPU millicores of a quantity (0 when it does not parse).
pub fn milli_cpu(q: &Quantity) -> i64 {
    parse_milli(&q.0).map(to_i64).unwrap_or(0)
}

/// The integer value of a quantity, rounded up (0 when it does not parse).
pub fn value(q: &Quantity) -> i64 {
    parse_milli(&q.0).map(|m| to_i64((m + 999).div_euclid(1000))).unwrap_or(0)
}

fn list_resources(list: Option<&BTreeMap<String, Quantity>>) -> (Option<i64>, Option<i64>) {
    let list = list.cloned().unwrap_or_default();
    (list.get("cpu").map(milli_cpu), list.get("memory").map(value))
}

/// What one container requests (requests, or limits where requests are unset), and the same with the
/// scoring defaults for what is unset.
fn container(c: &Container) -> (Resources, Resources) {
    let r = c.resources.as_ref();
    let (rc, rm) = list_resources(r.and_then(|r| r.requests.as_ref()));
    let (lc, lm) = list_resources(r.and_then(|r| r.limits.as_ref()));
    let cpu = rc.or(lc);
    let mem = rm.or(lm);
    let req = Resources { milli_cpu: cpu.unwrap_or(0), memory: mem.unwrap_or(0) };
    let non_zero = Resources {
        milli_cpu: cpu.filter(|v| *v != 0).unwrap_or(DEFAULT_MILLI_CPU_REQUEST),
        memory: mem.filter(|v| *v != 0).unwrap_or(DEFAULT_MEMORY_REQUEST),
    };
    (req, non_zero)
}

/// What `pod` requests, and the same with the scoring defaults (upstream's non-zero requests).
pub fn pod_requests(pod: &Pod) -> (Resources, Resources) {
    let Some(spec) = pod.spec.as_ref() else { return Default::default() };
    let mut req = Resources::default();
    let mut non_zero = Resources::default();
    for c in &spec.containers {
        let (r, n) = container(c);
        req = req.plus(r);
        non_zero = non_zero.plus(n);
    }
    for c in spec.init_containers.iter().flatten() {
        let (r, n) = container(c);
        req = req.max(r);
        non_zero = non_zero.max(n);
    }
    let (oc, om) = list_resources(spec.overhead.as_ref());
    let overhead = Resources { milli_cpu: oc.unwrap_or(0), memory: om.unwrap_or(0) };
    (req.plus(overhead), non_zero.plus(overhead))
}

/// What a node offers to pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocatable {
    /// CPU and memory (0 when the node does not report them).
    pub resources: Resources,
    /// How many pods it takes; `None` when the node does not say (then the count is not limited).
    pub pods: Option<i64>,
}

/// The node's `status.allocatable` (or `capacity` when allocatable is missing).
pub fn allocatable(node: &Node) -> Allocatable {
    let status = node.status.as_ref();
    let list = status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
    let (cpu, mem) = list_resources(list);
    Allocatable {
        resources: Resources { milli_cpu: cpu.unwrap_or(0), memory: mem.unwrap_or(0) },
        pods: list.and_then(|l| l.get("pods")).map(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("2"), Some(2000));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("0.0001"), Some(1), "rounded up");
        assert_eq!(parse_milli("1Ki"), Some(1_024_000));
        assert_eq!(parse_milli("4Gi"), Some(4 * (1i128 << 30) * 1000));
        assert_eq!(parse_milli("1k"), Some(1_000_000));
        assert_eq!(parse_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_milli("-1"), Some(-1000));
        assert_eq!(parse_milli("12Zi"), None);
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli(""), None);
        assert_eq!(value(&Quantity("129e6".into())), 129_000_000);
        assert_eq!(value(&Quantity("110".into())), 110);
        assert_eq!(milli_cpu(&Quantity("250m".into())), 250);
    }

    fn res(cpu: &str, mem: &str) -> Option<ResourceRequirements> {
        let mut m = BTreeMap::new();
        if !cpu.is_empty() {
            m.insert("cpu".to_string(), Quantity(cpu.into()));
        }
        if !mem.is_empty() {
            m.insert("memory".to_string(), Quantity(mem.into()));
        }
        Some(ResourceRequirements { requests: Some(m), ..Default::default() })
    }

    #[test]
    fn pod_requests_sum_containers_and_cover_init_containers() {
        let c = |name: &str, cpu: &str, mem: &str| Container {
            name: name.into(),
            resources: res(cpu, mem),
            ..Default::default()
        };
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![c("a", "100m", "1Mi"), c("b", "200m", "")],
                init_containers: Some(vec![c("i", "500m", "")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (req, non_zero) = pod_requests(&pod);
        assert_eq!(req, Resources { milli_cpu: 500, memory: 1 << 20 });
        assert_eq!(non_zero, Resources { milli_cpu: 500, memory: (1 << 20) + DEFAULT_MEMORY_REQUEST });
    }
}
