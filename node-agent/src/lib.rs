//! knet's node agent: what kubelet, kube-proxy and flannel do on a Kubernetes node.
//!
//! - `node`: registers the Node (addresses, capacity, conditions, daemon endpoint), renews its Lease, waits for
//!   `spec.podCIDR`.
//! - `cni`: finds the network configuration in the CNI config dir and runs plugins from the CNI bin path the way
//!   a container runtime does (libcni semantics: ADD/CHECK/DEL/GC/STATUS, cached results); writes the node's
//!   own config when it owns the config dir.
//! - `pods`: the pod runtime — sandboxes (network, mount and UTS namespaces), containers as processes from the
//!   image catalog, the files a pod sees (`/etc/hosts`, `/etc/resolv.conf`, service-account token, volumes),
//!   probes, restarts, graceful deletion, status reporting, adoption after a restart.
//! - `network`: cross-node routing of pod CIDRs (host-gw routes or a VXLAN overlay).
//! - `server`: the kubelet API the API server forwards `pods/exec`, `pods/attach`, `pods/log` and
//!   `pods/portforward` to, over TLS with client-certificate authentication.
//!
//! Invariant: only this crate (and knet-cni) touches netlink, namespaces or nftables.

pub mod cni;
pub mod config;
pub mod network;
pub mod node;
pub mod pods;
pub mod server;

pub use config::Config;
