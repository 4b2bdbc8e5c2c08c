//! The agent as a CNI runtime: network configuration from the config dir, plugin execution, cached results.

pub mod config;
