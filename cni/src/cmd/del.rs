//! DEL: removes the container's interface (which takes the veth's host end with it), the host end if it is
//! still there, and the attachment's addresses. Idempotent, and works when the namespace is already gone.

use crate::args::CmdArgs;
use crate::config::NetConf;
use crate::error::{code, CniError};
use crate::net::netns::{connect_host, Netns};
use crate::net::{link, NetError};
use crate::plan::host_veth_name;

/// Runs DEL.
pub async fn del(conf: &NetConf, args: &CmdArgs, stdin: &[u8]) -> Result<(), CniError> {
    // Deleting the host end of the veth deletes the container's end with it: one request, and the container's
    // namespace need not be entered. Only when knet-cni's host end is not there (the namespace is gone, or
    // another plugin made the attachment) is the interface looked for inside the container.
    let host = connect_host()?;
    let deleted = link::delete(&host, &host_veth_name(&args.container_id, &args.ifname)).await?;
    if !deleted && !args.netns.is_empty() {
        if let Some(ns) = Netns::open(std::path::Path::new(&args.netns))? {
            if ns.is_current()? {
                return Err(CniError::new(
                    code::INVALID_ENVIRONMENT,
                    format!("CNI_NETNS {} is the plugin's own network namespace, not a container's", args.netns),
                ));
            }
            match ns.connect() {
                Ok(container) => {
                    link::delete(&container, &args.ifname).await?;
                }
                // The path is there but no longer a namespace (unmounted): the namespace is gone.
                Err(NetError::EnterNetns { source: nix::errno::Errno::EINVAL, .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    super::add::release(conf, args, stdin)
}
