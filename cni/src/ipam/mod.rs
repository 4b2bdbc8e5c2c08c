//! Address management: host-local built in (config, ranges, the shared on-disk store, allocation), or any
//! other IPAM plugin run from `CNI_PATH`.

pub mod config;
pub mod delegate;
pub mod hostlocal;
pub mod range;
pub mod resolv;
pub mod store;

use config::HostLocalConfig;

/// How a network gets its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipam {
    /// No `ipam.type`: a layer-2 attachment without addresses.
    None,
    /// `host-local`, run in-process.
    HostLocal(HostLocalConfig),
    /// Any other type: the plugin of that name on `CNI_PATH`.
    Delegate(String),
}
