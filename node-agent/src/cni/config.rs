//! The `cni` part's flags.

use clap::Args;

/// Flags of the `cni` part of the agent.
#[derive(Debug, Clone, Default, Args)]
pub struct CniFlags {}
