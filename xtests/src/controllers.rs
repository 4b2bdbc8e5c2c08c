//! A `knet-controllers` process for one test, pointed at an [`ApiServer`]'s admin kubeconfig, with its
//! metrics on a free 127.0.0.1 port; killed on drop (also when the test panics).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::apiserver::{free_port, knet_binary, ApiServer};
use crate::process;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 80;

/// What [`Controllers::start_with`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitFor {
    /// `/readyz` is 200: this instance leads and its informers are synced.
    Ready,
    /// `/healthz` is 200: the process is up (a standby that does not lead yet).
    Healthy,
}

/// A running `knet-controllers`.
pub struct Controllers {
    bin: PathBuf,
    kubeconfig: PathBuf,
    log_path: PathBuf,
    port: u16,
    args: Vec<String>,
    child: Option<Child>,
    /// Keeps the log directory alive.
    _dir: tempfile::TempDir,
}

impl Controllers {
    /// Starts every controller against `api` with fast test timings (leader lease 4 s) and waits until
    /// ready.
    pub async fn start(api: &ApiServer) -> Result<Controllers> {
        Self::start_with(api, &[], WaitFor::Ready).await
    }

    /// Starts with extra arguments (they come last, so they override the defaults) and waits for `wait`.
    pub async fn start_with(api: &ApiServer, extra_args: &[&str], wait: WaitFor) -> Result<Controllers> {
        let dir = tempfile::Builder::new().prefix("knet-xtests-ctrl-").tempdir().context("making a log directory")?;
        let mut c = Controllers {
            bin: knet_binary("knet-controllers")?,
            kubeconfig: api.kubeconfig_path(),
            log_path: dir.path().join("knet-controllers.log"),
            port: 0,
            args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            _dir: dir,
        };
        c.port = free_port()?;
        c.spawn_and_wait(wait).await?;
        Ok(c)
    }

    /// `http://127.0.0.1:<port>` of /metrics, /healthz and /readyz.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process still runs (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// The text of /metrics.
    pub async fn metrics(&self) -> Result<String> {
        let resp = reqwest::Client::new()
            .get(format!("{}/metrics", self.url()))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .context("GET /metrics")?;
        resp.text().await.context("reading /metrics")
    }

    /// The sum of every sample of metric `name` whose labels contain all of `labels` (`k="v"` pairs).
    pub async fn metric_sum(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        Ok(sum_metric(&self.metrics().await?, name, labels))
    }

    /// Kills the process with SIGKILL (a crash) and reaps it.
    pub fn kill9(&mut self) {
        process::kill9(&mut self.child);
    }

    /// Stops with SIGTERM (releasing the leader lease), then SIGKILL after 10 s.
    pub async fn stop(&mut self) -> Result<()> {
        process::stop(&mut self.child, "knet-controllers", STOP_TIMEOUT).await
    }

    /// Starts the process again (after [`Controllers::kill9`] or [`Controllers::stop`]) and waits for `wait`.
    pub async fn restart(&mut self, wait: WaitFor) -> Result<()> {
        self.stop().await?;
        self.spawn_and_wait(wait).await
    }

    /// Everything the process printed (all starts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        process::tail(&self.log(), lines)
    }

    fn command(&self) -> Vec<String> {
        let mut args = vec![
            "--kubeconfig".to_string(),
            self.kubeconfig.display().to_string(),
            "--bind-address".into(),
            format!("127.0.0.1:{}", self.port),
            "--leader-elect-lease-duration".into(),
            "4s".into(),
            "--leader-elect-renew-deadline".into(),
            "3s".into(),
            "--leader-elect-retry-period".into(),
            "500ms".into(),
        ];
        args.extend(self.args.iter().cloned());
        args
    }

    async fn spawn_and_wait(&mut self, wait: WaitFor) -> Result<()> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let args = self.command();
        writeln!(log, "=== xtests: {} {}", self.bin.display(), args.join(" ")).context("writing the log")?;
        let stderr: File = log.try_clone().context("sharing the log file")?;
        let mut cmd = Command::new(&self.bin);
        cmd.args(&args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        let child = process::spawn_long_lived(cmd).with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait(wait)
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}; the last lines of its log:\n{}", self.log_tail(LOG_TAIL_LINES)))
    }

    async fn wait(&mut self, wait: WaitFor) -> Result<()> {
        let path = match wait {
            WaitFor::Ready => "/readyz",
            WaitFor::Healthy => "/healthz",
        };
        let url = format!("{}{path}", self.url());
        let deadline = Instant::now() + READY_TIMEOUT;
        let http = reqwest::Client::new();
        let mut last = String::from("nothing tried yet");
        loop {
            if !self.is_running() {
                bail!("knet-controllers exited during startup");
            }
            if Instant::now() > deadline {
                bail!("knet-controllers: {path} not 200 after {READY_TIMEOUT:?} (last: {last})");
            }
            match http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("GET {path}: {}", r.status()),
                Err(e) => last = format!("GET {path}: {e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The sum of every sample of `name` in Prometheus text `text` whose labels include all `labels`.
pub fn sum_metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels.iter().all(|(k, v)| label_text.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            if !all {
                return None;
            }
            value.parse::<f64>().ok()
        })
        .sum()
}

impl Drop for Controllers {
    fn drop(&mut self) {
        self.kill9();
        eprintln!(
            "--- last {LOG_TAIL_LINES} lines of knet-controllers' log ({}) ---\n{}\n--- end of log ---",
            self.log_path.display(),
            self.log_tail(LOG_TAIL_LINES)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::sum_metric;

    #[test]
    fn sums_matching_samples() {
        let text = "# HELP x\nknet_w_total{verb=\"update\",resource=\"endpointslices\"} 3\n\
                    knet_w_total{verb=\"create\",resource=\"endpointslices\"} 2\nknet_w_total{verb=\"update\",resource=\"pods\"} 7\n";
        assert_eq!(sum_metric(text, "knet_w_total", &[("resource", "endpointslices")]), 5.0);
        assert_eq!(sum_metric(text, "knet_w_total", &[("verb", "update")]), 10.0);
        assert_eq!(sum_metric(text, "knet_w_total", &[]), 12.0);
        assert_eq!(sum_metric(text, "other", &[]), 0.0);
    }
}
