//! The `pods` part's flags.

use clap::Args;

/// Flags of the `pods` part of the agent.
#[derive(Debug, Clone, Default, Args)]
pub struct PodFlags {}
