//! The `cni` part's flags (containerd's / kubelet's names where they exist).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Which plugin the network configuration the agent writes names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum CniPlugin {
    /// knet's own bridge + host-local IPAM plugin (`knet-cni`).
    #[default]
    #[value(name = "knet-cni")]
    KnetCni,
    /// The reference `bridge` plugin with `host-local` IPAM (containernetworking-plugins).
    #[value(name = "bridge")]
    Bridge,
}

impl CniPlugin {
    /// The plugin's `type` (its binary's name).
    pub fn plugin_type(self) -> &'static str {
        match self {
            CniPlugin::KnetCni => "knet-cni",
            CniPlugin::Bridge => "bridge",
        }
    }
}

/// Flags of the `cni` part of the agent.
#[derive(Debug, Clone, Args)]
pub struct CniFlags {
    /// Directory holding the network configuration; the lexically first *.conflist, *.conf or *.json is used.
    /// When it holds none, the agent writes `10-knet.conflist` for its podCIDR.
    #[arg(long, default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// Directories searched for plugin binaries, comma-separated.
    #[arg(long, default_value = "/opt/cni/bin,/usr/lib/cni", value_delimiter = ',')]
    pub cni_bin_dir: Vec<PathBuf>,
    /// Where results of ADD are cached for CHECK, DEL and GC (default: `<root-dir>/cni/cache`).
    #[arg(long)]
    pub cni_cache_dir: Option<PathBuf>,
    /// The plugin the written configuration uses.
    #[arg(long, value_enum, default_value_t = CniPlugin::KnetCni)]
    pub cni_plugin: CniPlugin,
}
