//! The containers of a pod worker: starting an instance (argv from the image catalog, the environment,
//! the shim), restarts with the restart policy and back-off, probes, kills (preStop, SIGTERM, SIGKILL after
//! the grace period), and adopting instances a previous agent started.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};

use super::{parse_time, pod_ref, Instance, Msg, PodWorker};
use crate::pods::env::{self, Sources};
use crate::pods::events::EventType;
use crate::pods::images;
use crate::pods::probes::{self, ProbeKind, ProbeResult, ProbeTarget};
use crate::pods::records::{self, InstanceMeta};
use crate::pods::shim::{self, ExitRecord, ShimReport, ShimSpec};
use crate::server::runtime::ExecTarget;

/// Go's duration formatting for back-off messages (`10s`, `1m20s`, `5m0s`).
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{}s", s / 60, s % 60)
    }
}

fn restartable(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

impl PodWorker {
    fn policy(&self) -> String {
        self.pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into())
    }

    /// Starts, restarts and back-offs containers: init containers one at a time in order, then the rest.
    pub(super) async fn sync_containers(&mut self) {
        let policy = self.policy();
        let n = self.ctrs.len();
        for i in 0..n {
            if !self.ctrs[i].init {
                continue;
            }
            let Some(spec) = self.container_spec(&self.ctrs[i].name) else { continue };
            if restartable(&spec) {
                // A sidecar: started in order, kept running; the next one waits until it has started.
                self.sync_one(i, "Always").await;
                let c = &self.ctrs[i];
                if !(c.instance.as_ref().is_some_and(Instance::running) && c.startup_done) {
                    return;
                }
                continue;
            }
            let state =
                self.ctrs[i].instance.as_ref().map(|inst| (inst.running(), inst.exit.as_ref().map(|e| e.exit_code)));
            match state {
                None => {
                    self.start(i).await;
                    return;
                }
                Some((true, _)) => return,
                Some((false, Some(0))) => continue,
                Some((false, _)) => {
                    if policy != "Never" {
                        self.restart_with_backoff(i).await;
                    }
                    return;
                }
            }
        }
        for i in 0..n {
            if !self.ctrs[i].init {
                self.sync_one(i, &policy).await;
            }
        }
    }

    async fn sync_one(&mut self, i: usize, policy: &str) {
        let (exists, running, code) = match &self.ctrs[i].instance {
            None => (false, false, None),
            Some(inst) => (true, inst.running(), inst.exit.as_ref().map(|e| e.exit_code)),
        };
        if !exists {
            self.start(i).await;
            return;
        }
        if running {
            // An image change (kubectl set image) restarts the container.
            let want = self.container_spec(&self.ctrs[i].name).and_then(|c| c.image).unwrap_or_default();
            let has = self.ctrs[i].instance.as_ref().map(|x| x.meta.image.clone()).unwrap_or_default();
            if want != has && self.ctrs[i].instance.as_ref().is_some_and(|x| x.killing.is_none()) {
                let name = self.ctrs[i].name.clone();
                self.event(
                    Some(i),
                    EventType::Normal,
                    "Killing",
                    format!("Container {name} definition changed, will be restarted"),
                );
                let grace = self.container_grace(None);
                self.kill(i, grace, true);
            }
            return;
        }
        let restart = match policy {
            "Always" => true,
            "OnFailure" => code != Some(0),
            _ => false,
        };
        if restart {
            self.restart_with_backoff(i).await;
        }
    }

    async fn restart_with_backoff(&mut self, i: usize) {
        let finished = self.ctrs[i]
            .instance
            .as_ref()
            .and_then(|x| x.exit.as_ref())
            .and_then(|e| e.finished_at.parse::<jiff::Timestamp>().ok())
            .unwrap_or_else(jiff::Timestamp::now);
        let checked = self.ctrs[i].backoff.check(finished, jiff::Timestamp::now());
        match checked {
            Ok(()) => {
                self.ctrs[i].waiting = None;
                self.start(i).await;
            }
            Err(remaining) => {
                let current = self.ctrs[i].backoff.current().unwrap_or(crate::pods::backoff::INITIAL);
                let name = self.ctrs[i].name.clone();
                let pod = pod_ref(&self.pod);
                self.ctrs[i].waiting = Some((
                    "CrashLoopBackOff".into(),
                    Some(format!("back-off {} restarting failed container={name} pod={pod}", go_duration(current))),
                ));
                let due = self.ctrs[i].backoff_event.is_none_or(|t| t.elapsed() >= remaining.min(current));
                if due {
                    self.ctrs[i].backoff_event = Some(Instant::now());
                    self.event(
                        Some(i),
                        EventType::Warning,
                        "BackOff",
                        format!("Back-off restarting failed container {name} in pod {pod}"),
                    );
                }
                self.wake_in(remaining + Duration::from_millis(10));
            }
        }
    }

    /// The container's environment (the runtime's HOSTNAME and image env, then Kubernetes').
    async fn build_env(&self, spec: &Container) -> Result<Vec<(String, String)>, String> {
        let ns = self.namespace();
        let (cms, secrets) = env::references(spec);
        let mut sources = Sources::default();
        for name in cms {
            let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                kube::Api::namespaced(self.rt.client.clone(), &ns);
            let got = api.get_opt(&name).await.map_err(|e| e.to_string())?;
            sources.config_maps.insert(name, got);
        }
        for name in secrets {
            let api: kube::Api<k8s_openapi::api::core::v1::Secret> = kube::Api::namespaced(self.rt.client.clone(), &ns);
            let got = api.get_opt(&name).await.map_err(|e| e.to_string())?;
            sources.secrets.insert(name, got);
        }
        // Like kubelet, wait for the Service cache before the first container of the agent's life starts.
        let _ = tokio::time::timeout(Duration::from_secs(10), self.rt.services.wait_until_ready()).await;
        let services: Vec<_> = self.rt.services.state().iter().map(|s| (**s).clone()).collect();
        let links = self.pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
        let service_env = env::services::service_env(&services, &ns, links);
        let ips = self.pod_ips();
        let ctx = env::PodContext {
            pod: &self.pod,
            pod_ips: &ips,
            host_ips: &self.rt.node_ips,
            allocatable: self.rt.allocatable,
        };
        let built = env::container_env(&ctx, spec, &sources, &service_env).map_err(|e| e.to_string())?;
        if !built.skipped.is_empty() {
            let idx = self.ctrs.iter().position(|c| c.name == spec.name);
            self.event(
                idx,
                EventType::Warning,
                "InvalidEnvironmentVariableNames",
                format!("Keys [{}] from the EnvFrom were skipped since they are considered invalid environment variable names.", built.skipped.join(", ")),
            );
        }
        let host_network = self.host_network();
        let hostname = if host_network {
            self.rt.node_hostname.clone()
        } else {
            crate::pods::files::uts_hostname(&self.pod, &self.rt.flags.cluster_domain)
        };
        let image = images::lookup(spec.image.as_deref().unwrap_or_default());
        let mut out: Vec<(String, String)> = vec![("HOSTNAME".into(), hostname)];
        let set = |out: &mut Vec<(String, String)>, k: String, v: String| match out.iter_mut().find(|(n, _)| *n == k) {
            Some(e) => e.1 = v,
            None => out.push((k, v)),
        };
        for (k, v) in image.env {
            set(&mut out, k, v);
        }
        for (k, v) in built.vars {
            set(&mut out, k, v);
        }
        if !out.iter().any(|(k, _)| k == "HOME") {
            out.push(("HOME".into(), "/root".into()));
        }
        if spec.tty.unwrap_or(false) && !out.iter().any(|(k, _)| k == "TERM") {
            out.push(("TERM".into(), "xterm".into()));
        }
        Ok(out)
    }

    /// Starts a new instance of container `i`.
    pub(super) async fn start(&mut self, i: usize) {
        let Some(spec) = self.container_spec(&self.ctrs[i].name) else { return };
        let Some(sandbox) = self.sandbox.clone() else { return };
        let name = spec.name.clone();
        let image = spec.image.clone().unwrap_or_default();
        let env = match self.build_env(&spec).await {
            Ok(e) => e,
            Err(msg) => {
                if self.ctrs[i].waiting.as_ref().map(|w| w.1.as_deref()) != Some(Some(msg.as_str())) {
                    self.event(Some(i), EventType::Warning, "Failed", format!("Error: {msg}"));
                }
                self.ctrs[i].waiting = Some(("CreateContainerConfigError".into(), Some(msg)));
                self.wake_in(Duration::from_secs(2));
                return;
            }
        };
        let command = env::expand_all(spec.command.as_deref().unwrap_or_default(), &env);
        let args = env::expand_all(spec.args.as_deref().unwrap_or_default(), &env);
        let argv = match images::argv(&image, &name, &command, &args) {
            Ok(a) => a,
            Err(e) => {
                self.ctrs[i].waiting = Some(("UnsupportedImage".into(), Some(e.to_string())));
                return;
            }
        };
        // The previous instance becomes lastState.
        let attempt = match self.ctrs[i].instance.take() {
            Some(mut old) => {
                old.abort_tasks();
                if let Some(exit) = &old.exit {
                    self.ctrs[i].previous = Some(super::terminated_of(&old.meta, exit));
                }
                self.ctrs[i].previous_log = Some(old.log.clone());
                old.meta.attempt + 1
            }
            None => 0,
        };
        let c = &mut self.ctrs[i];
        c.waiting = None;
        c.ready = false;
        c.startup_done = spec.startup_probe.is_none();
        let id = super::sandbox::new_id();
        let dir = self.rt.layout.instance_dir(&self.uid, &name, attempt);
        let meta = InstanceMeta {
            id: id.clone(),
            attempt,
            image: image.clone(),
            env: env.clone(),
            working_dir: spec.working_dir.clone(),
        };
        let log = self.rt.layout.log_path(&self.namespace(), &self.name(), &self.uid, &name, attempt);
        // Only the current and the previous log are kept.
        if attempt >= 2 {
            let _ = std::fs::remove_file(self.rt.layout.log_path(
                &self.namespace(),
                &self.name(),
                &self.uid,
                &name,
                attempt - 2,
            ));
            let _ = std::fs::remove_dir_all(self.rt.layout.instance_dir(&self.uid, &name, attempt - 2));
        }
        let socket = self.rt.layout.socket(&id);
        let write = std::fs::create_dir_all(&dir).and_then(|_| shim::write_json(&dir.join("meta.json"), &meta));
        let mut inst = Instance {
            meta,
            socket: socket.clone(),
            log: log.clone(),
            shim: None,
            started_at: None,
            exit: None,
            tasks: Vec::new(),
            killing: None,
        };
        if let Err(e) = write {
            inst.exit = Some(start_failure(format!("writing the container's records: {e}")));
            self.ctrs[i].instance = Some(inst);
            return;
        }
        self.event(
            Some(i),
            EventType::Normal,
            "Pulled",
            format!("Container image {image:?} already present on machine and can be accessed by the pod"),
        );
        let shim_spec = ShimSpec {
            holder: sandbox.holder,
            argv,
            env,
            working_dir: spec.working_dir.clone(),
            tty: spec.tty.unwrap_or(false),
            stdin: spec.stdin.unwrap_or(false),
            stdin_once: spec.stdin_once.unwrap_or(false),
            log_path: log,
            exit_path: dir.join("exit.json"),
            state_path: dir.join("state.json"),
            socket_path: socket,
            user: run_as(&self.pod, &spec),
        };
        self.event(Some(i), EventType::Normal, "Created", "Container created");
        let t0 = Instant::now();
        let started = shim::start(&self.rt.exe, &dir.join("spec.json"), &shim_spec).await;
        tracing::debug!(pod = %self.name(), container = %name, ms = t0.elapsed().as_millis() as u64, "container start");
        match started {
            Ok(ShimReport::Started(state)) => {
                self.rt.metrics.containers_started.inc();
                inst.shim = Some(state.shim);
                inst.started_at = parse_time(&state.started_at);
                self.event(Some(i), EventType::Normal, "Started", "Container started");
                self.ctrs[i].instance = Some(inst);
                self.watch(i);
                self.post_start(i, &spec).await;
            }
            Ok(ShimReport::Failed(rec)) => {
                self.event(
                    Some(i),
                    EventType::Warning,
                    "Failed",
                    format!("Error: {}", rec.message.clone().unwrap_or_default()),
                );
                inst.exit = Some(rec);
                self.ctrs[i].instance = Some(inst);
            }
            Err(e) => {
                self.event(Some(i), EventType::Warning, "Failed", format!("Error: {e}"));
                inst.exit = Some(start_failure(e.to_string()));
                self.ctrs[i].instance = Some(inst);
            }
        }
    }

    /// Watches a running instance: its exit, and its probes.
    pub(super) fn watch(&mut self, i: usize) {
        let Some(spec) = self.container_spec(&self.ctrs[i].name) else { return };
        let tx = self.tx.clone();
        let name = self.ctrs[i].name.clone();
        let Some(inst) = self.ctrs[i].instance.as_mut() else { return };
        let Some(shim) = inst.shim else { return };
        let id = inst.meta.id.clone();
        let watcher_name = name.clone();
        let watcher_id = id.clone();
        inst.tasks.push(tokio::spawn(async move {
            shim::wait_exit(shim).await;
            let _ = tx.send(Msg::Exited { container: watcher_name, instance: watcher_id }).await;
        }));
        if spec.startup_probe.is_some() && !self.ctrs[i].startup_done {
            if let Some(p) = spec.startup_probe.clone() {
                self.spawn_probe(i, ProbeKind::Startup, p, &spec);
            }
        } else {
            self.start_main_probes(i, &spec);
        }
    }

    fn start_main_probes(&mut self, i: usize, spec: &Container) {
        if let Some(p) = spec.liveness_probe.clone() {
            self.spawn_probe(i, ProbeKind::Liveness, p, spec);
        }
        match spec.readiness_probe.clone() {
            Some(p) => self.spawn_probe(i, ProbeKind::Readiness, p, spec),
            None => self.ctrs[i].ready = true,
        }
    }

    fn exec_target(&self, i: usize) -> Option<ExecTarget> {
        let holder = self.sandbox.as_ref()?.holder;
        let inst = self.ctrs[i].instance.as_ref()?;
        Some(ExecTarget {
            pid: holder.pid,
            env: inst.meta.env.clone(),
            working_dir: inst.meta.working_dir.clone().map(Into::into),
        })
    }

    fn spawn_probe(&mut self, i: usize, kind: ProbeKind, probe: Probe, spec: &Container) {
        let Some(exec) = self.exec_target(i) else { return };
        let target = ProbeTarget { pod_ip: self.pod_ips().first().copied(), exec };
        let field_path = crate::pods::events::container_field_path(self.ctrs[i].init, &self.ctrs[i].name);
        let Some(inst) = self.ctrs[i].instance.as_mut() else { return };
        let task = probes::run(
            kind,
            probe,
            spec.clone(),
            inst.meta.id.clone(),
            target,
            self.pod.clone(),
            field_path,
            self.rt.events.clone(),
            self.probe_tx.clone(),
        );
        inst.tasks.push(tokio::spawn(task));
    }

    pub(super) fn handle_probe(&mut self, p: ProbeResult) {
        let Some(i) = self.ctrs.iter().position(|c| c.name == p.container) else { return };
        let current = self.ctrs[i].instance.as_ref().is_some_and(|x| x.meta.id == p.instance && x.running());
        if !current {
            return;
        }
        match (p.kind, p.ok) {
            (ProbeKind::Readiness, ok) => self.ctrs[i].ready = ok,
            (ProbeKind::Startup, true) => {
                self.ctrs[i].startup_done = true;
                if let Some(spec) = self.container_spec(&p.container) {
                    self.start_main_probes(i, &spec);
                }
            }
            (ProbeKind::Liveness | ProbeKind::Startup, false) => {
                let which = if p.kind == ProbeKind::Liveness { "liveness" } else { "startup" };
                let name = self.ctrs[i].name.clone();
                self.event(
                    Some(i),
                    EventType::Normal,
                    "Killing",
                    format!("Container {name} failed {which} probe, will be restarted"),
                );
                let probe_grace = self.container_spec(&name).and_then(|c| {
                    let pr = if p.kind == ProbeKind::Liveness { c.liveness_probe } else { c.startup_probe };
                    pr.and_then(|pr| pr.termination_grace_period_seconds)
                });
                let grace = self.container_grace(probe_grace);
                self.kill(i, grace, true);
            }
            (ProbeKind::Liveness, true) => {}
        }
    }

    fn container_grace(&self, probe_grace: Option<i64>) -> Duration {
        let secs = probe_grace
            .or_else(|| self.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30)
            .max(0);
        Duration::from_secs(secs as u64)
    }

    /// Stops the running instance of container `i`: preStop (when `pre_stop`), SIGTERM, SIGKILL at the grace
    /// period's end. A kill already under way is replaced (a shorter grace period).
    pub(super) fn kill(&mut self, i: usize, grace: Duration, pre_stop: bool) {
        let spec = self.container_spec(&self.ctrs[i].name);
        let exec = self.exec_target(i);
        let pod_ip = self.pod_ips().first().copied();
        let field_path = crate::pods::events::container_field_path(self.ctrs[i].init, &self.ctrs[i].name);
        let Some(inst) = self.ctrs[i].instance.as_mut() else { return };
        let Some(shim) = inst.shim else { return };
        if let Some((task, _)) = inst.killing.take() {
            task.abort();
        }
        let socket = inst.socket.clone();
        let hook = if pre_stop {
            spec.as_ref().and_then(|c| c.lifecycle.as_ref()).and_then(|l| l.pre_stop.clone())
        } else {
            None
        };
        let container = spec.unwrap_or_default();
        let deadline = Instant::now() + grace;
        let events = self.rt.events.clone();
        let pod = self.pod.clone();
        let task = tokio::spawn(async move {
            if let (Some(hook), Some(exec)) = (hook, exec) {
                let target = ProbeTarget { pod_ip, exec };
                if let Err(msg) = run_hook(&hook, &container, &target, grace, "PreStopHook").await {
                    events.pod(&pod, Some(field_path), EventType::Warning, "FailedPreStopHook", msg);
                }
            }
            let _ = shim::signal(&socket, nix::libc::SIGTERM).await;
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, shim::wait_exit(shim)).await.is_err() {
                let _ = shim::signal(&socket, nix::libc::SIGKILL).await;
                let _ = tokio::time::timeout(Duration::from_secs(5), shim::wait_exit(shim)).await;
            }
        });
        inst.killing = Some((task, deadline));
    }

    /// Runs the container's postStart hook (the worker waits for it, as kubelet does); a failure kills the
    /// container.
    async fn post_start(&mut self, i: usize, spec: &Container) {
        let Some(hook) = spec.lifecycle.as_ref().and_then(|l| l.post_start.clone()) else { return };
        let Some(exec) = self.exec_target(i) else { return };
        let target = ProbeTarget { pod_ip: self.pod_ips().first().copied(), exec };
        if let Err(msg) = run_hook(&hook, spec, &target, Duration::from_secs(120), "PostStartHook").await {
            self.event(Some(i), EventType::Warning, "FailedPostStartHook", msg);
            let grace = self.container_grace(None);
            self.kill(i, grace, false);
        }
    }

    /// Takes over what a previous agent left in the pod dir: the sandbox and container instances.
    pub(super) async fn adopt(&mut self) {
        let phase = self.pod.status.as_ref().and_then(|s| s.phase.clone());
        if matches!(phase.as_deref(), Some("Succeeded" | "Failed")) {
            // A finished pod stays finished: its status in the API is final, its sandbox is gone or goes.
            self.finished = true;
            self.frozen_status = true;
            if let Some(rec) = records::read_sandbox(&self.dir) {
                self.sandbox = Some(rec);
                self.finished = false;
            }
            self.load_instances();
            return;
        }
        let Some(rec) = records::read_sandbox(&self.dir) else {
            super::sandbox::clean_unrecorded(&self.rt, &self.uid).await;
            return;
        };
        if !super::sandbox::alive(&rec) {
            // Handled by ensure_sandbox: it tears the remains down and starts over.
            self.sandbox = Some(rec);
            return;
        }
        self.last_ips = rec.ips.clone();
        self.sandbox = Some(rec);
        self.check_network = true;
        self.start_time = self.pod.status.as_ref().and_then(|s| s.start_time.clone());
        self.volumes_ready = false;
        self.load_instances();
        // The status in the API is kept as it is until something changes.
        self.last_posted = self.pod.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
        self.reported_start = true;
        tracing::info!(namespace = %self.namespace(), pod = %self.name(), "adopted the pod's sandbox and containers");
    }

    /// Reads the container instances a previous agent started, and watches the running ones.
    fn load_instances(&mut self) {
        let found: HashMap<String, Vec<records::InstanceOnDisk>> =
            records::read_instances(&self.dir).into_iter().collect();
        for i in 0..self.ctrs.len() {
            let name = self.ctrs[i].name.clone();
            let Some(instances) = found.get(&name) else { continue };
            let Some(latest) = instances.last() else { continue };
            if instances.len() >= 2 {
                let prev = &instances[instances.len() - 2];
                if let Some(exit) = &prev.exit {
                    self.ctrs[i].previous = Some(super::terminated_of(&prev.meta, exit));
                }
                self.ctrs[i].previous_log =
                    Some(self.rt.layout.log_path(&self.namespace(), &self.name(), &self.uid, &name, prev.meta.attempt));
            }
            let alive = latest.state.as_ref().is_some_and(|s| s.shim.alive()) && latest.exit.is_none();
            let exit = match (&latest.exit, alive) {
                (Some(e), _) => Some(e.clone()),
                (None, true) => None,
                (None, false) => Some(start_failure("the container's supervisor is gone".into())),
            };
            let inst = Instance {
                meta: latest.meta.clone(),
                socket: self.rt.layout.socket(&latest.meta.id),
                log: self.rt.layout.log_path(&self.namespace(), &self.name(), &self.uid, &name, latest.meta.attempt),
                shim: latest.state.as_ref().map(|s| s.shim),
                started_at: latest.state.as_ref().and_then(|s| parse_time(&s.started_at)),
                exit,
                tasks: Vec::new(),
                killing: None,
            };
            let running = inst.running();
            self.ctrs[i].instance = Some(inst);
            let spec = self.container_spec(&name);
            self.ctrs[i].startup_done = spec.as_ref().is_none_or(|s| s.startup_probe.is_none());
            if running && self.sandbox.is_some() {
                self.watch(i);
            }
        }
    }
}

/// The container's `runAsUser`/`runAsGroup` (the container's security context over the pod's), with the
/// pod's `supplementalGroups` and `fsGroup`; `None` when it runs as root with no groups asked for.
pub fn run_as(pod: &k8s_openapi::api::core::v1::Pod, c: &Container) -> Option<shim::RunAs> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.clone()).unwrap_or_default();
    let csc = c.security_context.clone().unwrap_or_default();
    let uid = csc.run_as_user.or(psc.run_as_user);
    let gid = csc.run_as_group.or(psc.run_as_group);
    let mut groups: Vec<u32> = psc.supplemental_groups.unwrap_or_default().into_iter().map(|g| g as u32).collect();
    if let Some(fs) = psc.fs_group {
        groups.push(fs as u32);
    }
    if uid.is_none() && gid.is_none() && groups.is_empty() {
        return None;
    }
    Some(shim::RunAs { uid: uid.unwrap_or(0) as u32, gid: gid.unwrap_or(0) as u32, groups })
}

fn start_failure(message: String) -> ExitRecord {
    ExitRecord {
        exit_code: 128,
        signal: None,
        reason: "StartError".into(),
        message: Some(message),
        started_at: None,
        finished_at: shim::crilog::now(),
    }
}

/// Runs a lifecycle hook (exec, httpGet, tcpSocket or sleep) within `timeout`.
async fn run_hook(
    hook: &LifecycleHandler,
    container: &Container,
    target: &ProbeTarget,
    timeout: Duration,
    which: &str,
) -> Result<(), String> {
    if let Some(s) = &hook.sleep {
        tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64).min(timeout)).await;
        return Ok(());
    }
    let probe = Probe {
        exec: hook.exec.clone(),
        http_get: hook.http_get.clone(),
        tcp_socket: hook.tcp_socket.clone(),
        ..Default::default()
    };
    let (ok, out) = probes::run_once(&probe, container, target, timeout).await;
    if ok {
        Ok(())
    } else {
        Err(format!("{which} failed: {}", out.trim_end()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
