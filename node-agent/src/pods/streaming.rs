//! The pod runtime as the kubelet API needs it ([`StreamingRuntime`]): exec targets (the sandbox holder's
//! namespaces with the container's environment), attach (the container's shim socket), CRI log files, and the
//! pod's network namespace.

use std::path::PathBuf;
use std::sync::Arc;

use super::runtime::{ContainerView, PodRuntime, PodView};
use crate::server::runtime::{Attachment, ContainerRef, ExecTarget, LogFiles, RuntimeError, StreamingRuntime};

/// [`StreamingRuntime`] over the pod runtime's views.
pub struct Streaming(pub Arc<PodRuntime>);

impl Streaming {
    fn pod(&self, namespace: &str, pod: &str, uid: Option<&str>) -> Result<PodView, RuntimeError> {
        self.0.find(namespace, pod, uid).ok_or_else(|| {
            RuntimeError::NotFound(format!("pod \"{pod}\" in namespace \"{namespace}\" is not on this node"))
        })
    }

    fn container(&self, c: &ContainerRef) -> Result<(PodView, ContainerView), RuntimeError> {
        let pod = self.pod(&c.namespace, &c.pod, c.uid.as_deref())?;
        let view = pod.containers.get(&c.container).cloned().ok_or_else(|| {
            RuntimeError::NotFound(format!(
                "container {:?} not found in pod \"{}/{}\"",
                c.container, c.namespace, c.pod
            ))
        })?;
        Ok((pod, view))
    }
}

#[async_trait::async_trait]
impl StreamingRuntime for Streaming {
    async fn exec_target(&self, c: &ContainerRef) -> Result<ExecTarget, RuntimeError> {
        let (pod, view) = self.container(c)?;
        let holder = pod.holder.filter(|h| h.alive());
        match (holder, view.running) {
            (Some(h), true) => {
                Ok(ExecTarget { pid: h.pid, env: view.env, working_dir: view.working_dir.map(PathBuf::from) })
            }
            _ => Err(RuntimeError::BadRequest(format!("container {:?} is not running", c.container))),
        }
    }

    async fn attach(&self, c: &ContainerRef) -> Result<Attachment, RuntimeError> {
        let (_, view) = self.container(c)?;
        let socket = view
            .socket
            .filter(|_| view.running)
            .ok_or_else(|| RuntimeError::BadRequest(format!("container {:?} is not running", c.container)))?;
        super::shim::attach(&socket)
            .await
            .map_err(|e| RuntimeError::Internal(format!("attaching to {:?}: {e}", c.container)))
    }

    async fn log_files(&self, c: &ContainerRef) -> Result<LogFiles, RuntimeError> {
        let (_, view) = self.container(c)?;
        let current = view
            .log_current
            .ok_or_else(|| RuntimeError::BadRequest(format!("container {:?} has not started yet", c.container)))?;
        Ok(LogFiles { current, previous: view.log_previous, running: view.running })
    }

    async fn pod_netns(&self, namespace: &str, pod: &str, uid: Option<&str>) -> Result<PathBuf, RuntimeError> {
        let p = self.pod(namespace, pod, uid)?;
        // A host-network pod's network namespace is the node's: the agent's own.
        Ok(p.netns.unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", std::process::id()))))
    }
}
