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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::runtime::ContainerView;
    use crate::pods::sandbox::ProcessId;
    use crate::server::runtime::StreamingRuntime;

    fn runtime() -> Arc<PodRuntime> {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        let root = std::env::temp_dir().join("knet-streaming-test");
        let flags = crate::cni::config::CniFlags {
            cni_conf_dir: root.join("net.d"),
            cni_bin_dir: vec![],
            cni_cache_dir: None,
            cni_plugin: crate::cni::config::CniPlugin::Bridge,
        };
        let (services, _writer) = kube::runtime::reflector::store();
        Arc::new(PodRuntime {
            client,
            node_name: "n".into(),
            node_ips: vec![],
            node_hostname: "n".into(),
            layout: crate::pods::layout::Layout::new(&root),
            flags: crate::pods::config::PodFlags {
                cluster_dns: vec![],
                cluster_domain: "cluster.local".into(),
                resolv_conf: "/etc/resolv.conf".into(),
                agnhost_path: None,
                busybox_path: None,
                sync_frequency: std::time::Duration::from_secs(60),
            },
            network: Arc::new(crate::cni::Network::new(&flags, &root)),
            exe: "/proc/self/exe".into(),
            agnhost: None,
            services,
            events: crate::pods::events::Recorder::discard(),
            dns: crate::pods::files::resolv::NodeDns {
                cluster_dns: vec![],
                cluster_domain: "cluster.local".into(),
                host: Default::default(),
            },
            allocatable: (1.0, 1.0, 1.0),
            registry: Default::default(),
            metrics: Arc::new(crate::pods::metrics::Metrics::new()),
        })
    }

    fn cref(pod: &str, container: &str) -> ContainerRef {
        ContainerRef { namespace: "default".into(), pod: pod.into(), uid: None, container: container.into() }
    }

    #[tokio::test]
    async fn serves_views_of_running_and_stopped_containers() {
        let rt = runtime();
        let me = ProcessId::of(std::process::id()).unwrap();
        let mut containers = std::collections::HashMap::new();
        containers.insert(
            "web".to_string(),
            ContainerView {
                env: vec![("A".into(), "1".into())],
                working_dir: Some("/srv".into()),
                socket: Some("/nonexistent.sock".into()),
                running: true,
                log_current: Some("/logs/1.log".into()),
                log_previous: Some("/logs/0.log".into()),
            },
        );
        containers.insert(
            "done".to_string(),
            ContainerView { log_current: Some("/logs/done.log".into()), ..Default::default() },
        );
        rt.publish(PodView {
            namespace: "default".into(),
            name: "p".into(),
            uid: "u1".into(),
            holder: Some(me),
            netns: Some("/r/netns/u1".into()),
            containers,
        });
        let s = Streaming(rt.clone());
        let t = s.exec_target(&cref("p", "web")).await.unwrap();
        assert_eq!(
            (t.pid, t.env.clone(), t.working_dir),
            (me.pid, vec![("A".to_string(), "1".to_string())], Some("/srv".into()))
        );
        assert!(matches!(s.exec_target(&cref("p", "done")).await, Err(RuntimeError::BadRequest(_))));
        assert!(matches!(s.exec_target(&cref("p", "nope")).await, Err(RuntimeError::NotFound(_))));
        assert!(matches!(s.exec_target(&cref("other", "web")).await, Err(RuntimeError::NotFound(_))));
        let logs = s.log_files(&cref("p", "web")).await.unwrap();
        assert_eq!(
            (logs.current, logs.previous, logs.running),
            ("/logs/1.log".into(), Some("/logs/0.log".into()), true)
        );
        assert!(!s.log_files(&cref("p", "done")).await.unwrap().running);
        assert_eq!(s.pod_netns("default", "p", Some("u1")).await.unwrap(), PathBuf::from("/r/netns/u1"));
        assert!(matches!(s.pod_netns("default", "p", Some("other-uid")).await, Err(RuntimeError::NotFound(_))));
        // A socket nobody serves: an internal error, not a hang.
        assert!(matches!(s.attach(&cref("p", "web")).await, Err(RuntimeError::Internal(_))));
        assert!(matches!(s.attach(&cref("p", "done")).await, Err(RuntimeError::BadRequest(_))));
        rt.unpublish("u1");
        assert!(matches!(s.log_files(&cref("p", "web")).await, Err(RuntimeError::NotFound(_))));
    }
}
