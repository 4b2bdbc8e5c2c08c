//! Node registration and heartbeats: creates or updates the Node (addresses, capacity, allocatable, conditions,
//! `daemonEndpoints.kubeletEndpoint`), renews the `kube-node-lease` Lease, keeps the Ready condition current, and
//! waits for the node IPAM controller to set `spec.podCIDR`.

pub mod config;
