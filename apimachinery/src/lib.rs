//! Kubernetes API machinery shared by knet's components.
//!
//! This is knet's counterpart of `k8s.io/apimachinery`: the pieces that the API
//! server, the controllers and the node agent all need to agree on.
//!
//! - [`field`]: field paths and validation errors, formatted like kube-apiserver's.
//! - [`validation`]: name, label, port and IP validators (DNS-1123, IANA service names, …).
//! - [`labels`]: label selectors (string form and `LabelSelector`), parsing and matching.
//! - [`fields`]: field selectors.
//! - [`patch`]: JSON patch, JSON merge patch and strategic merge patch.
//! - [`qos`]: a Pod's QoS class (recorded by the API server, reported by the node agent).

pub mod field;
pub mod fields;
pub mod labels;
pub mod patch;
pub mod qos;
pub mod quantity;
pub mod validation;
