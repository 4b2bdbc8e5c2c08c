//! The `network` part's flags.

use clap::Args;

/// Flags of the `network` part of the agent.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkFlags {}
