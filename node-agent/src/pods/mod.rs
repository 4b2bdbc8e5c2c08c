//! The pod runtime: runs the pods bound to this node as sandboxes with processes, and reports their status.

pub mod config;
pub mod enter;
pub mod env;
pub mod files;
pub mod images;
pub mod nginx;
pub mod sandbox;
pub mod shim;
