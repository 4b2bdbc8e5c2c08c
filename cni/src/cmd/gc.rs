//! GC: frees every lease whose attachment (container ID + ifname) is not among `cni.dev/valid-attachments`,
//! or forwards GC to the delegated IPAM plugin.

use crate::args::{CmdArgs, Command};
use crate::config::NetConf;
use crate::error::CniError;
use crate::ipam::{delegate, hostlocal, Ipam};

/// Runs GC.
pub fn gc(conf: &NetConf, args: &CmdArgs, stdin: &[u8]) -> Result<(), CniError> {
    match &conf.ipam {
        Ipam::None => Ok(()),
        Ipam::HostLocal(c) => {
            let valid: Vec<(String, String)> =
                conf.valid_attachments.iter().map(|a| (a.container_id.clone(), a.ifname.clone())).collect();
            let released = hostlocal::gc(c, &valid)?;
            if !released.is_empty() {
                tracing::info!(network = %conf.name, released = ?released, "GC released stale leases");
            }
            Ok(())
        }
        Ipam::Delegate(t) => delegate::exec(t, Command::Gc, &args.path, stdin).map(|_| ()),
    }
}
