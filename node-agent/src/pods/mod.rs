//! The pod runtime: runs the pods bound to this node as sandboxes with processes, and reports their status.

pub mod backoff;
pub mod config;
pub mod enter;
pub mod env;
pub mod events;
pub mod files;
pub mod images;
pub mod layout;
pub mod manager;
pub mod metrics;
pub mod nginx;
pub mod orphans;
pub mod probes;
pub mod records;
pub mod runtime;
pub mod sandbox;
pub mod shim;
pub mod status;
pub mod streaming;
pub mod volumes;
pub mod worker;
