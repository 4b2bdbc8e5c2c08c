//! The single-host lab: builds the hosts of a small cluster as network namespaces on one underlay bridge, runs
//! the knet components in them, and tears everything down again. Used by `knet-lab` and by the test harness.
//!
//! - `netns`: named network namespaces and processes inside one.
//! - `procs`: processes and mounts of network namespaces (what `down` kills and unmounts).
//! - `topology`: an underlay bridge in its own namespace, hosts plugged into it, fake pods.

pub mod netns;
pub mod procs;
pub mod topology;
