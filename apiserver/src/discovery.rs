//! API discovery documents. (Interface stub: being implemented.)

use serde_json::{json, Value};

pub fn version_info() -> Value {
    json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-knet", "platform": "linux/amd64"})
}
pub fn core_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}
pub fn group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
}
pub fn group(_name: &str) -> Option<Value> {
    None
}
pub fn resource_list(_group: &str, _version: &str) -> Option<Value> {
    None
}
pub fn aggregated(_core: bool) -> Value {
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": []})
}
