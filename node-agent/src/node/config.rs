//! The `node` part's flags.

use clap::Args;

/// Flags of the `node` part of the agent.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeFlags {}
