//! STATUS: whether ADD can be served: addresses left in every range set (or the delegated IPAM plugin's
//! STATUS), and a usable bridge (code 50 when the name is taken by something else, 51 when the bridge is down).

use crate::args::{CmdArgs, Command};
use crate::config::NetConf;
use crate::error::{code, CniError};
use crate::ipam::{delegate, hostlocal, Ipam};
use crate::net::link;
use crate::net::netns::connect_host;

/// Runs STATUS.
pub async fn status(conf: &NetConf, args: &CmdArgs, stdin: &[u8]) -> Result<(), CniError> {
    let host = connect_host()?;
    if let Some(b) = link::get(&host, &conf.bridge).await? {
        if !b.is_bridge() {
            return Err(CniError::new(
                code::PLUGIN_NOT_AVAILABLE,
                format!("{:?} exists but is not a bridge: ADD cannot attach pods to it", conf.bridge),
            ));
        }
        if !b.up {
            return Err(CniError::new(
                code::LIMITED_CONNECTIVITY,
                format!("bridge {:?} is down: existing pods on it cannot communicate", conf.bridge),
            ));
        }
    }
    match &conf.ipam {
        Ipam::None => Ok(()),
        Ipam::HostLocal(c) => hostlocal::status(c),
        Ipam::Delegate(t) => delegate::exec(t, Command::Status, &args.path, stdin).map(|_| ()),
    }
}
