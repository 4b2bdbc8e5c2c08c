//! The single-host lab: builds the hosts of a small cluster as network namespaces on one underlay bridge, runs
//! the knet components in them, and tears everything down again. Used by `knet-lab` and by the test harness.

pub mod netns;
