//! The single-host lab: builds the hosts of a small cluster as network namespaces on one underlay bridge, runs
//! the knet components in them, and tears everything down again. Used by `knet-lab` and by the test harness.
//!
//! - `config`: what a lab is made of (hosts, addresses, names), saved as `lab.json` in the state dir.
//! - `netns`: named network namespaces and processes inside one (`knet_component_base::netns`, re-exported).
//! - `topology`: an underlay bridge in its own namespace, hosts plugged into it, fake pods.
//! - `scripts`: the per-host bring-up scripts (`lab/hosts/*.sh`) and running them inside a host.
//! - `up`, `down`, `status`: the subcommands; `lock`: one `up`/`down` at a time.
//! - `outside`: the outside host's client-IP HTTP server and DNS server.
//! - `procs`: processes and mounts of network namespaces (what `down` kills and unmounts).

pub mod config;
pub mod down;
pub mod lock;
pub use knet_component_base::netns;
pub mod outside;
pub mod procs;
pub mod scripts;
pub mod status;
pub mod topology;
pub mod up;
