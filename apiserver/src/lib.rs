//! knet's kube-apiserver: the Kubernetes REST API over a revisioned store.
//!
//! Data flow of a write: [`http`] parses the request (path, query, body) →
//! [`registry`] decodes and strictly checks the object, applies the strategy
//! ([`admission`]: defaulting and validation), allocates Service IPs and ports
//! ([`alloc`]) and commits one [`storage`] transaction → the store's watch stream
//! feeds every watcher. Reads come back through [`registry`], optionally as
//! server-side [`tables`].
//!
//! Module map:
//! - [`resources`]: the table of served resources.
//! - [`storage`]: the etcd-shaped store trait and its sled backend.
//! - [`registry`]: generic get/list/watch/create/update/patch/delete over the store.
//! - [`admission`]: per-kind defaulting and validation.
//! - [`alloc`]: ClusterIP and NodePort allocation; [`repair`]: the loop that repairs it.
//! - [`event_ttl`]: the sweep that deletes Events older than `--event-ttl`.
//! - [`convert`]: the events.k8s.io/v1 view of stored core/v1 Events.
//! - [`http`]: the axum router, content negotiation, watch streaming.
//! - [`discovery`], [`openapi`], [`tables`]: what kubectl reads to know the API.
//! - [`pki`], [`auth`]: certificates, tokens, kubeconfigs and authentication.
//! - [`kubelet`]: `pods/log`, `exec`, `attach`, `portforward` proxied to the node's kubelet API.
//! - [`serviceaccount`]: service-account tokens (TokenRequest, JWT authentication) and the ServiceAccount
//!   admission plugin.
//! - [`error`]: `Status` errors.
//! - [`protobuf`]: protobuf request bodies (kubectl's typed generators) decoded to JSON.

pub mod admission;
pub mod alloc;
pub mod auth;
pub mod bootstrap;
pub mod convert;
pub mod discovery;
pub mod error;
pub mod event_ttl;
pub mod http;
pub mod kubelet;
pub mod metrics;
pub mod openapi;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod repair;
pub mod resources;
pub mod serviceaccount;
pub mod storage;
pub mod tables;
