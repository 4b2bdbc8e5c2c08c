//! One pod's worker (kubelet's pod worker + sync loop): a task that owns the pod's sandbox and containers and
//! converges them on the pod spec — volumes, sandbox, init containers in order, containers with the restart
//! policy and back-off, probes — reports status through `pods/status`, and on deletion stops the containers
//! gracefully (preStop, SIGTERM, SIGKILL after the grace period), tears the sandbox down (CNI DEL), and deletes
//! the pod with grace 0 and a UID precondition as kubelet's status manager does. It wakes on pod updates,
//! container exits, probe results and a 10 s resync.

mod containers;
pub mod sandbox;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::Api;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::backoff::Backoff;
use super::events::EventType;
use super::files;
use super::probes::ProbeResult;
use super::records::{self, InstanceMeta, PodRecord, SandboxRecord};
use super::runtime::{ContainerView, PodRuntime, PodView};
use super::sandbox::ProcessId;
use super::shim::ExitRecord;
use super::status::{self, CState, CView, StatusInput, Terminated};
use super::volumes::PodVolumes;

/// How often a pod is synced without a reason.
const RESYNC: Duration = Duration::from_secs(10);
/// kubelet's minimum grace period for a container.
const MIN_GRACE: Duration = Duration::from_secs(2);

/// What a worker is told.
#[derive(Debug)]
pub enum Msg {
    Update(Box<Pod>),
    /// The pod is gone from the API.
    Deleted,
    /// A container instance's shim ended.
    Exited {
        container: String,
        instance: String,
    },
}

/// A container instance (one attempt).
struct Instance {
    meta: InstanceMeta,
    socket: PathBuf,
    log: PathBuf,
    shim: Option<ProcessId>,
    started_at: Option<Time>,
    exit: Option<ExitRecord>,
    tasks: Vec<JoinHandle<()>>,
    /// The kill in progress and its SIGKILL deadline.
    killing: Option<(JoinHandle<()>, Instant)>,
}

impl Instance {
    fn running(&self) -> bool {
        self.shim.is_some() && self.exit.is_none()
    }

    fn abort_tasks(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// One container of the pod.
struct Ctr {
    name: String,
    init: bool,
    instance: Option<Instance>,
    previous: Option<Terminated>,
    previous_log: Option<PathBuf>,
    waiting: Option<(String, Option<String>)>,
    backoff: Backoff,
    backoff_event: Option<Instant>,
    ready: bool,
    startup_done: bool,
}

/// Whether the worker goes on.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Done,
}

/// The worker of one pod.
pub struct PodWorker {
    rt: Arc<PodRuntime>,
    uid: String,
    pod: Pod,
    gone: bool,
    dir: PathBuf,
    rx: mpsc::Receiver<Msg>,
    tx: mpsc::Sender<Msg>,
    probe_rx: mpsc::Receiver<ProbeResult>,
    probe_tx: mpsc::Sender<ProbeResult>,
    first_sync: Instant,
    start_time: Option<Time>,
    volumes: PodVolumes,
    volumes_ready: bool,
    next_volume_sync: Instant,
    mount_event: Option<Instant>,
    network_event: Option<Instant>,
    sandbox: Option<SandboxRecord>,
    sandbox_retry: Option<Instant>,
    /// Run CNI CHECK on the (adopted) sandbox at the next sync.
    check_network: bool,
    last_ips: Vec<IpAddr>,
    ctrs: Vec<Ctr>,
    failure: Option<(String, String)>,
    /// Terminal phase reached and the sandbox removed.
    finished: bool,
    /// The status in the API is final (a finished pod adopted after a restart): never rewritten.
    frozen_status: bool,
    terminating_since: Option<Instant>,
    last_posted: Option<serde_json::Value>,
    next_wakeup: Option<Instant>,
    reported_start: bool,
}

/// Starts the worker of `pod` (adopting what `adopt` found on disk) and returns its mailbox. `done` gets the
/// pod's UID when the worker ends.
pub fn spawn(rt: Arc<PodRuntime>, pod: Pod, adopt: bool, done: mpsc::Sender<String>) -> mpsc::Sender<Msg> {
    let (tx, rx) = mpsc::channel(64);
    let (probe_tx, probe_rx) = mpsc::channel(64);
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let dir = rt.layout.pod_dir(&uid);
    let ctrs = pod
        .spec
        .as_ref()
        .map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .map(|c| (c, true))
                .chain(s.containers.iter().map(|c| (c, false)))
                .map(|(c, init)| Ctr {
                    name: c.name.clone(),
                    init,
                    instance: None,
                    previous: None,
                    previous_log: None,
                    waiting: None,
                    backoff: Backoff::default(),
                    backoff_event: None,
                    ready: false,
                    startup_done: false,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut w = PodWorker {
        rt,
        uid: uid.clone(),
        pod,
        gone: false,
        dir,
        rx,
        tx: tx.clone(),
        probe_rx,
        probe_tx,
        first_sync: Instant::now(),
        start_time: None,
        volumes: PodVolumes::default(),
        volumes_ready: false,
        next_volume_sync: Instant::now(),
        mount_event: None,
        network_event: None,
        sandbox: None,
        sandbox_retry: None,
        check_network: false,
        last_ips: Vec::new(),
        ctrs,
        failure: None,
        finished: false,
        frozen_status: false,
        terminating_since: None,
        last_posted: None,
        next_wakeup: None,
        reported_start: false,
    };
    tokio::spawn(async move {
        if adopt {
            w.adopt().await;
        }
        w.run().await;
        let _ = done.send(uid).await;
    });
    tx
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn parse_time(s: &str) -> Option<Time> {
    s.parse::<jiff::Timestamp>().ok().map(Time)
}

/// The default `terminationMessagePath`; the only one read (it lives in the pod's private `/dev`).
const TERMINATION_LOG: &str = "/dev/termination-log";

/// A finished container's message: what it wrote to `/dev/termination-log`, or with
/// `FallbackToLogsOnError` the end of its log when it failed (kubelet's rules, 4 KiB at most).
fn termination_message(
    spec: &k8s_openapi::api::core::v1::Container,
    holder: ProcessId,
    log: &std::path::Path,
    exit_code: i32,
) -> Option<String> {
    const MAX: usize = 4096;
    let path = spec.termination_message_path.as_deref().unwrap_or(TERMINATION_LOG);
    if path == TERMINATION_LOG && holder.alive() {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{}/root{TERMINATION_LOG}", holder.pid)) {
            if !text.is_empty() {
                return Some(text.chars().take(MAX).collect());
            }
        }
    }
    if spec.termination_message_policy.as_deref() == Some("FallbackToLogsOnError") && exit_code != 0 {
        let text = std::fs::read_to_string(log).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        let tail: Vec<String> = lines[lines.len().saturating_sub(80)..]
            .iter()
            .map(|l| l.splitn(4, ' ').nth(3).unwrap_or_default().to_string())
            .collect();
        let joined = tail.join("\n");
        let start = joined.len().saturating_sub(MAX);
        return Some(joined[joined.ceil_char_boundary(start)..].to_string());
    }
    None
}

/// `name_namespace(uid)`, as kubelet formats a pod in messages.
fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

fn terminated_of(meta: &InstanceMeta, exit: &ExitRecord) -> Terminated {
    Terminated {
        exit_code: exit.exit_code,
        signal: exit.signal,
        reason: exit.reason.clone(),
        message: exit.message.clone(),
        started_at: exit.started_at.as_deref().and_then(parse_time),
        finished_at: parse_time(&exit.finished_at).unwrap_or_else(now),
        container_id: Some(meta.id.clone()),
    }
}

impl PodWorker {
    fn namespace(&self) -> String {
        self.pod.metadata.namespace.clone().unwrap_or_else(|| "default".into())
    }

    fn name(&self) -> String {
        self.pod.metadata.name.clone().unwrap_or_default()
    }

    fn host_network(&self) -> bool {
        self.pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
    }

    fn wake_in(&mut self, d: Duration) {
        let at = Instant::now() + d;
        self.next_wakeup = Some(self.next_wakeup.map_or(at, |w| w.min(at)));
    }

    fn event(&self, container: Option<usize>, type_: EventType, reason: &str, message: impl Into<String>) {
        let fp = container.map(|i| super::events::container_field_path(self.ctrs[i].init, &self.ctrs[i].name));
        self.rt.events.pod(&self.pod, fp, type_, reason, message);
    }

    async fn run(mut self) {
        loop {
            if self.sync().await == Flow::Done {
                break;
            }
            self.publish_view();
            let wake = self.next_wakeup.unwrap_or_else(|| Instant::now() + RESYNC).min(Instant::now() + RESYNC);
            tokio::select! {
                m = self.rx.recv() => match m {
                    Some(m) => self.handle(m),
                    // The manager is gone: the agent is stopping; the pod keeps running.
                    None => return,
                },
                p = self.probe_rx.recv() => {
                    if let Some(p) = p {
                        self.handle_probe(p);
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            while let Ok(m) = self.rx.try_recv() {
                self.handle(m);
            }
            while let Ok(p) = self.probe_rx.try_recv() {
                self.handle_probe(p);
            }
        }
        self.rt.unpublish(&self.uid);
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Update(p) => {
                if p.metadata.uid.as_deref() == Some(self.uid.as_str()) {
                    self.pod = *p;
                }
            }
            Msg::Deleted => self.gone = true,
            Msg::Exited { container, instance } => {
                let Some(i) = self.ctrs.iter().position(|c| c.name == container) else { return };
                let layout = self.rt.layout.clone();
                let uid = self.uid.clone();
                let (ns, pod) = (self.namespace(), self.name());
                let c = &mut self.ctrs[i];
                let Some(inst) = c.instance.as_mut().filter(|x| x.meta.id == instance) else { return };
                if inst.exit.is_none() {
                    let path = layout.instance_dir(&uid, &container, inst.meta.attempt).join("exit.json");
                    inst.exit = Some(super::shim::read_json(&path).unwrap_or_else(|| ExitRecord {
                        exit_code: 137,
                        signal: None,
                        reason: "Error".into(),
                        message: Some("the container's supervisor ended without an exit record".into()),
                        started_at: None,
                        finished_at: super::shim::crilog::now(),
                    }));
                }
                inst.abort_tasks();
                c.ready = false;
                let holder = self.sandbox.as_ref().map(|s| s.holder);
                let spec = self.pod.spec.as_ref().and_then(|s| {
                    s.init_containers.iter().flatten().chain(s.containers.iter()).find(|x| x.name == container).cloned()
                });
                let c = &mut self.ctrs[i];
                let Some(inst) = c.instance.as_mut() else { return };
                if let (Some(exit), Some(spec), Some(holder)) = (inst.exit.as_mut(), spec, holder) {
                    if exit.message.is_none() {
                        exit.message = termination_message(&spec, holder, &inst.log, exit.exit_code);
                    }
                }
                tracing::info!(namespace = %ns, pod = %pod, container = %container,
                    exit_code = inst.exit.as_ref().map(|e| e.exit_code), "container exited");
            }
        }
    }

    /// Posts the status when it changed.
    async fn post_status(&mut self) {
        if self.gone || self.frozen_status {
            return;
        }
        let terminal = self.terminating_since.is_some()
            && self.ctrs.iter().all(|c| !c.instance.as_ref().is_some_and(Instance::running));
        let input = self.status_input(terminal);
        let status = status::render(&input, self.pod.status.as_ref());
        let mut json = serde_json::to_value(&status).unwrap_or_default();
        if self.last_posted.as_ref() == Some(&json) {
            return;
        }
        if let Some(obj) = json.as_object_mut() {
            for k in ["reason", "message"] {
                obj.entry(k).or_insert(serde_json::Value::Null);
            }
        }
        let patch = serde_json::json!({ "metadata": { "uid": self.uid }, "status": json });
        let api: Api<Pod> = Api::namespaced(self.rt.client.clone(), &self.namespace());
        match api.patch_status(&self.name(), &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(p) if p.metadata.uid.as_deref() == Some(self.uid.as_str()) => {
                self.last_posted = serde_json::to_value(&status).ok();
                self.pod = p;
            }
            Ok(_) => self.gone = true,
            Err(kube::Error::Api(s)) if s.code == 404 => self.gone = true,
            Err(e) => {
                tracing::warn!(namespace = %self.namespace(), pod = %self.name(), error = %e, "status update failed");
                self.wake_in(Duration::from_secs(1));
            }
        }
    }

    fn pod_ips(&self) -> Vec<IpAddr> {
        if self.host_network() {
            return self.rt.node_ips.clone();
        }
        match &self.sandbox {
            Some(s) => s.ips.clone(),
            None => self.last_ips.clone(),
        }
    }

    fn cview(&self, c: &Ctr, sandbox_ready: bool, init_pending: bool) -> CView {
        let spec_image = self.container_spec(&c.name).and_then(|s| s.image).unwrap_or_default();
        let (state, container_id, started) = match &c.instance {
            Some(inst) if inst.running() => (
                CState::Running { started_at: inst.started_at.clone().unwrap_or_else(now) },
                Some(inst.meta.id.clone()),
                c.startup_done,
            ),
            Some(inst) => {
                // Every stopped instance has an exit record; a fixed stand-in keeps the status stable anyway.
                let exit = inst.exit.clone().unwrap_or_else(|| ExitRecord {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: None,
                    started_at: None,
                    finished_at: "1970-01-01T00:00:00Z".into(),
                });
                match &c.waiting {
                    Some((reason, message)) => (
                        CState::Waiting { reason: reason.clone(), message: message.clone() },
                        Some(inst.meta.id.clone()),
                        false,
                    ),
                    None => (CState::Terminated(terminated_of(&inst.meta, &exit)), Some(inst.meta.id.clone()), false),
                }
            }
            None => {
                let (reason, message) = c.waiting.clone().unwrap_or_else(|| {
                    if !c.init && init_pending && sandbox_ready {
                        ("PodInitializing".into(), None)
                    } else {
                        ("ContainerCreating".into(), None)
                    }
                });
                (CState::Waiting { reason, message }, None, false)
            }
        };
        // A container waiting to restart shows its last run as lastState.
        let last_state = match (&c.instance, &state) {
            (Some(inst), CState::Waiting { .. }) if inst.exit.is_some() => {
                inst.exit.as_ref().map(|e| terminated_of(&inst.meta, e))
            }
            _ => c.previous.clone(),
        };
        CView {
            name: c.name.clone(),
            image: spec_image,
            state,
            last_state,
            ready: c.ready && c.instance.as_ref().is_some_and(Instance::running),
            started,
            restart_count: c.instance.as_ref().map(|i| i.meta.attempt).unwrap_or(0),
            container_id,
        }
    }

    fn status_input(&self, terminal: bool) -> StatusInput<'_> {
        let sandbox_ready = self.sandbox.is_some();
        let init_pending = self
            .ctrs
            .iter()
            .filter(|c| c.init)
            .any(|c| c.instance.as_ref().and_then(|i| i.exit.as_ref()).is_none_or(|e| e.exit_code != 0));
        let init = self.ctrs.iter().filter(|c| c.init).map(|c| self.cview(c, sandbox_ready, init_pending)).collect();
        let containers =
            self.ctrs.iter().filter(|c| !c.init).map(|c| self.cview(c, sandbox_ready, init_pending)).collect();
        // StatusInput borrows the IP slices: keep them in the worker.
        StatusInput {
            pod: &self.pod,
            init,
            containers,
            sandbox_ready,
            pod_ips: if self.host_network() {
                &self.rt.node_ips
            } else if let Some(s) = &self.sandbox {
                &s.ips
            } else {
                &self.last_ips
            },
            host_ips: &self.rt.node_ips,
            start_time: self.start_time.clone(),
            failure: self.failure.clone(),
            terminal,
            now: now(),
        }
    }

    fn container_spec(&self, name: &str) -> Option<k8s_openapi::api::core::v1::Container> {
        let spec = self.pod.spec.as_ref()?;
        spec.init_containers.iter().flatten().chain(spec.containers.iter()).find(|c| c.name == name).cloned()
    }

    fn publish_view(&self) {
        let mut containers = HashMap::new();
        for c in &self.ctrs {
            let inst = c.instance.as_ref();
            containers.insert(
                c.name.clone(),
                ContainerView {
                    env: inst.map(|i| i.meta.env.clone()).unwrap_or_default(),
                    working_dir: inst.and_then(|i| i.meta.working_dir.clone()),
                    socket: inst.filter(|i| i.running()).map(|i| i.socket.clone()),
                    running: inst.is_some_and(Instance::running),
                    log_current: inst.map(|i| i.log.clone()),
                    log_previous: c.previous_log.clone(),
                },
            );
        }
        self.rt.publish(PodView {
            namespace: self.namespace(),
            name: self.name(),
            uid: self.uid.clone(),
            holder: self.sandbox.as_ref().map(|s| s.holder),
            netns: self.sandbox.as_ref().and_then(|s| s.netns.clone()).map(PathBuf::from),
            containers,
        });
    }

    async fn sync(&mut self) -> Flow {
        self.next_wakeup = None;
        if self.gone || self.pod.metadata.deletion_timestamp.is_some() {
            if self.terminating_since.is_none() {
                self.terminating_since = Some(Instant::now());
            }
            return self.sync_terminating().await;
        }
        if self.finished {
            self.post_status().await;
            return Flow::Continue;
        }
        if self.frozen_status {
            // An adopted finished pod whose sandbox is still there: stop what runs, remove the sandbox.
            for i in 0..self.ctrs.len() {
                if self.ctrs[i].instance.as_ref().is_some_and(|x| x.running() && x.killing.is_none()) {
                    self.kill(i, MIN_GRACE, false);
                }
            }
            if self.ctrs.iter().all(|c| !c.instance.as_ref().is_some_and(Instance::running)) {
                self.finish().await;
            } else {
                self.wake_in(Duration::from_secs(1));
            }
            return Flow::Continue;
        }
        if self.start_time.is_none() {
            self.start_time = Some(now());
        }
        if self.failure.is_none() {
            self.check_images();
        }
        if self.failure.is_some() {
            self.post_status().await;
            return Flow::Continue;
        }
        if !self.sync_volumes().await || !self.ensure_sandbox().await {
            self.post_status().await;
            return Flow::Continue;
        }
        self.sync_containers().await;
        let phase = status::phase(&self.status_input(false)).to_string();
        if (phase == "Succeeded" || phase == "Failed")
            && self.ctrs.iter().all(|c| !c.instance.as_ref().is_some_and(Instance::running))
        {
            self.finish().await;
        }
        if phase == "Running"
            && !self.reported_start
            && self.ctrs.iter().filter(|c| !c.init).all(|c| c.instance.as_ref().is_some_and(Instance::running))
        {
            self.reported_start = true;
            self.rt.metrics.pod_start_duration.observe(self.first_sync.elapsed().as_secs_f64());
        }
        self.post_status().await;
        Flow::Continue
    }

    /// An image not in the catalog and without a command fails the pod.
    fn check_images(&mut self) {
        let Some(spec) = self.pod.spec.clone() else { return };
        for (i, c) in spec.init_containers.iter().flatten().chain(spec.containers.iter()).enumerate() {
            let image = c.image.clone().unwrap_or_default();
            if let Err(e) = super::images::argv(
                &image,
                &c.name,
                c.command.as_deref().unwrap_or_default(),
                c.args.as_deref().unwrap_or_default(),
            ) {
                let msg = e.to_string();
                self.event(Some(i), EventType::Warning, "Failed", format!("Error: {msg}"));
                if let Some(ctr) = self.ctrs.get_mut(i) {
                    ctr.waiting = Some(("UnsupportedImage".into(), Some(msg.clone())));
                }
                self.failure = Some(("UnsupportedImage".into(), msg));
                return;
            }
        }
    }

    /// Volumes set up (and periodically refreshed); false while the pod must wait for them.
    async fn sync_volumes(&mut self) -> bool {
        if self.volumes_ready && Instant::now() < self.next_volume_sync {
            return true;
        }
        let ips = self.pod_ips();
        let ctx = super::env::PodContext {
            pod: &self.pod,
            pod_ips: &ips,
            host_ips: &self.rt.node_ips,
            allocatable: self.rt.allocatable,
        };
        match self.volumes.sync(&self.rt.client, &ctx, &self.dir).await {
            Ok(()) => {
                self.volumes_ready = true;
                self.next_volume_sync = Instant::now() + self.rt.flags.sync_frequency;
                true
            }
            Err(f) => {
                if self.volumes_ready {
                    tracing::warn!(namespace = %self.namespace(), pod = %self.name(), error = %f, "refreshing a volume failed");
                    self.next_volume_sync = Instant::now() + Duration::from_secs(10);
                    return true;
                }
                if self.mount_event.is_none_or(|t| t.elapsed() > Duration::from_secs(120)) {
                    self.mount_event = Some(Instant::now());
                    self.event(None, EventType::Warning, "FailedMount", f.to_string());
                }
                self.wake_in(Duration::from_secs(2));
                false
            }
        }
    }

    /// Makes sure the sandbox exists (creating or re-creating it); false while it cannot be had.
    async fn ensure_sandbox(&mut self) -> bool {
        if let Some(s) = &self.sandbox {
            if sandbox::alive(s) {
                if self.check_network && self.rt.network.ready() {
                    // An adopted sandbox: CNI CHECK verifies what ADD made is still in place.
                    self.check_network = false;
                    if let Some(netns) = &s.netns {
                        let att = sandbox::attachment(&self.pod, &s.id, netns);
                        match self.rt.network.check_pod(&att).await {
                            Ok(()) => {
                                tracing::debug!(namespace = %self.namespace(), pod = %self.name(), "CNI CHECK passed")
                            }
                            Err(e) => tracing::warn!(namespace = %self.namespace(), pod = %self.name(), error = %e,
                                "CNI CHECK of an adopted sandbox failed"),
                        }
                    }
                }
                return true;
            }
            // The holder died: its containers died with the namespaces' last user gone or not; start over.
            self.event(
                None,
                EventType::Normal,
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.",
            );
            let old = s.clone();
            for c in &mut self.ctrs {
                if let Some(inst) = c.instance.as_mut() {
                    if let Some(shim) = inst.shim {
                        shim.signal(nix::sys::signal::Signal::SIGKILL);
                    }
                }
            }
            if let Err(e) = sandbox::teardown(&self.rt, Some(&self.pod), &self.uid, &old).await {
                tracing::warn!(namespace = %self.namespace(), pod = %self.name(), error = %e, "tearing down a dead sandbox");
            }
            records::remove_sandbox(&self.dir);
            self.sandbox = None;
        }
        if self.sandbox_retry.is_some_and(|t| Instant::now() < t) {
            self.next_wakeup = self.sandbox_retry;
            return false;
        }
        if !self.rt.network.ready() && !self.host_network() {
            if self.network_event.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                self.network_event = Some(Instant::now());
                let msg = format!("network is not ready: {}", crate::node::status::NETWORK_NOT_READY);
                self.event(None, EventType::Warning, "NetworkNotReady", msg);
            }
            self.wake_in(Duration::from_secs(1));
            return false;
        }
        match self.create_sandbox().await {
            Ok(rec) => {
                self.last_ips = rec.ips.clone();
                self.sandbox = Some(rec);
                self.sandbox_retry = None;
                self.rt.metrics.sandboxes_created.inc();
                true
            }
            Err(e) => {
                tracing::warn!(namespace = %self.namespace(), pod = %self.name(), error = %e, "creating the pod sandbox failed");
                self.event(
                    None,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {e}"),
                );
                self.rt.metrics.sync_errors.inc();
                let retry = Instant::now() + Duration::from_secs(2);
                self.sandbox_retry = Some(retry);
                self.next_wakeup = Some(retry);
                false
            }
        }
    }

    async fn create_sandbox(&mut self) -> Result<SandboxRecord, String> {
        let io = |e: std::io::Error| e.to_string();
        records::write_pod(
            &self.dir,
            &PodRecord { namespace: self.namespace(), name: self.name(), uid: self.uid.clone() },
        )
        .map_err(io)?;
        let domain = &self.rt.flags.cluster_domain;
        let (hostname, fqdn_domain) = files::hostname_and_domain(&self.pod, domain);
        let host_network = self.host_network();
        let uts = if host_network { None } else { Some(files::uts_hostname(&self.pod, domain)) };
        let shown_hostname = uts.clone().unwrap_or_else(|| self.rt.node_hostname.clone());
        // The managed files exist before the holder binds them; /etc/hosts gets the IPs after CNI ADD.
        let hosts_path = sandbox::managed_file(&self.dir, sandbox::HOSTS);
        let aliases = self.pod.spec.as_ref().and_then(|s| s.host_aliases.clone()).unwrap_or_default();
        let initial_hosts = if host_network {
            let node_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            files::hosts::host_network(&node_hosts, &aliases)
        } else {
            String::new()
        };
        std::fs::write(&hosts_path, initial_hosts).map_err(io)?;
        let spec = self.pod.spec.clone().unwrap_or_default();
        let dns = files::resolv::pod_dns(
            &self.rt.dns,
            &self.namespace(),
            spec.dns_policy.as_deref(),
            host_network,
            spec.dns_config.as_ref(),
        );
        std::fs::write(sandbox::managed_file(&self.dir, sandbox::RESOLV), files::resolv::render(&dns)).map_err(io)?;
        std::fs::write(sandbox::managed_file(&self.dir, sandbox::HOSTNAME), format!("{shown_hostname}\n"))
            .map_err(io)?;
        let holder_spec = sandbox::holder_spec(
            &self.pod,
            &self.dir,
            uts,
            &self.volumes.paths,
            &self.rt.layout.images_dir(),
            self.rt.agnhost.as_deref(),
        );
        let rec = sandbox::create(&self.rt, &self.pod, &self.uid, &holder_spec).await?;
        if !host_network {
            let hosts = files::hosts::managed(&rec.ips, &hostname, fqdn_domain.as_deref(), &aliases);
            if let Err(e) = std::fs::write(&hosts_path, hosts) {
                let _ = sandbox::teardown(&self.rt, Some(&self.pod), &self.uid, &rec).await;
                return Err(e.to_string());
            }
        }
        if let Err(e) = records::write_sandbox(&self.dir, &rec) {
            let _ = sandbox::teardown(&self.rt, Some(&self.pod), &self.uid, &rec).await;
            return Err(e.to_string());
        }
        tracing::info!(namespace = %self.namespace(), pod = %self.name(), ips = ?rec.ips, holder = rec.holder.pid, "sandbox ready");
        Ok(rec)
    }

    /// The pod reached a terminal phase: its sandbox goes (the records and logs stay until it is deleted).
    async fn finish(&mut self) {
        if let Some(rec) = self.sandbox.clone() {
            match sandbox::teardown(&self.rt, Some(&self.pod), &self.uid, &rec).await {
                Ok(()) => {
                    records::remove_sandbox(&self.dir);
                    self.sandbox = None;
                }
                Err(e) => {
                    tracing::warn!(namespace = %self.namespace(), pod = %self.name(), error = %e, "tearing down the sandbox of a finished pod");
                    self.wake_in(Duration::from_secs(2));
                    return;
                }
            }
        }
        self.finished = true;
    }

    fn grace(&self) -> Duration {
        let secs = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30)
            .max(0) as u64;
        let g = Duration::from_secs(secs);
        if self.gone {
            g.min(MIN_GRACE)
        } else {
            g
        }
    }

    async fn sync_terminating(&mut self) -> Flow {
        let since = self.terminating_since.unwrap_or_else(Instant::now);
        let deadline = since + self.grace();
        let mut running = false;
        for i in 0..self.ctrs.len() {
            let Some(inst) = self.ctrs[i].instance.as_ref() else { continue };
            if !inst.running() {
                continue;
            }
            running = true;
            let shorter = inst.killing.as_ref().is_some_and(|(_, d)| deadline < *d);
            if inst.killing.is_none() || shorter {
                if inst.killing.is_none() {
                    let name = self.ctrs[i].name.clone();
                    self.event(Some(i), EventType::Normal, "Killing", format!("Stopping container {name}"));
                }
                let remaining = deadline.saturating_duration_since(Instant::now());
                self.kill(i, remaining, !shorter);
            }
        }
        if running {
            self.wake_in(Duration::from_secs(1));
            self.post_status().await;
            return Flow::Continue;
        }
        for c in &mut self.ctrs {
            if let Some(inst) = c.instance.as_mut() {
                inst.abort_tasks();
            }
        }
        if let Some(rec) = self.sandbox.clone() {
            if let Err(e) = sandbox::teardown(&self.rt, Some(&self.pod), &self.uid, &rec).await {
                tracing::warn!(namespace = %self.namespace(), pod = %self.name(), error = %e, "tearing down the sandbox");
                self.event(None, EventType::Warning, "FailedKillPod", format!("error killing pod: {e}"));
                self.wake_in(Duration::from_secs(2));
                return Flow::Continue;
            }
            records::remove_sandbox(&self.dir);
            self.sandbox = None;
        }
        if !self.gone {
            self.post_status().await;
            let api: Api<Pod> = Api::namespaced(self.rt.client.clone(), &self.namespace());
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions { uid: Some(self.uid.clone()), resource_version: None }),
                ..Default::default()
            };
            match api.delete(&self.name(), &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => {
                    tracing::warn!(namespace = %self.namespace(), pod = %self.name(), error = %e, "deleting the pod failed");
                    self.wake_in(Duration::from_secs(1));
                    return Flow::Continue;
                }
            }
        }
        self.remove_files();
        tracing::info!(namespace = %self.namespace(), pod = %self.name(), "pod removed from the node");
        Flow::Done
    }

    /// Removes the pod's records, volumes and logs.
    fn remove_files(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(self.rt.layout.pod_logs_dir(&self.namespace(), &self.name(), &self.uid));
    }
}
