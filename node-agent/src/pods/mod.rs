//! The pod runtime: runs the pods bound to this node as sandboxes with processes, and reports their status.

pub mod config;
pub mod enter;
