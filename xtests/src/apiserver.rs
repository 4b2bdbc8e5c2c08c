//! A `knet-apiserver` process for one test: fresh data directory, free port on 127.0.0.1, TLS trusted through
//! the CA it generates, killed and cleaned up on drop (also when the test panics).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::process;

/// How long a start may take until `GET /readyz` answers 200.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful stop may take before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lines of the server log printed when the harness drops a server.
const LOG_TAIL_LINES: usize = 80;
const BINARY: &str = "knet-apiserver";
const LOG_FILE: &str = "knet-apiserver.log";
const KUBECONFIG_FILE: &str = "admin.kubeconfig";

/// Where the knet binaries are: `$KNET_BIN_DIR`, else the `target/<profile>/` directory the running test
/// executable (`target/<profile>/deps/<test>-<hash>`) was built in.
pub fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KNET_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("finding the test executable")?;
    let mut dir = exe.parent().context("the test executable has no directory")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("target/<profile>/deps has no parent")?;
    }
    Ok(dir.to_path_buf())
}

/// The path of a knet binary, checked to exist.
pub fn knet_binary(name: &str) -> Result<PathBuf> {
    let path = bin_dir()?.join(name);
    if !path.is_file() {
        bail!(
            "{name} not found at {}: build the binaries first (`cargo build --workspace --bins`, which \
             scripts/test.sh does) or point KNET_BIN_DIR at the directory holding them",
            path.display()
        );
    }
    Ok(path)
}

/// A free TCP port on 127.0.0.1 (free when asked; the start retries if another process takes it).
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr().context("reading the bound address")?.port())
}

/// A running (or, after [`ApiServer::kill9`], stopped) `knet-apiserver`.
pub struct ApiServer {
    /// The data directory; `None` once kept (KNET_KEEP_TEST_DIRS) at drop.
    dir: Option<tempfile::TempDir>,
    data_dir: PathBuf,
    port: u16,
    bin: PathBuf,
    extra_args: Vec<String>,
    child: Option<Child>,
}

impl ApiServer {
    /// Starts a server on a fresh data directory and a free port, and waits until it is ready.
    pub async fn start() -> Result<ApiServer> {
        Self::start_with_args(&[]).await
    }

    /// [`ApiServer::start`] with extra command-line arguments for `knet-apiserver`.
    pub async fn start_with_args(extra_args: &[&str]) -> Result<ApiServer> {
        let bin = knet_binary(BINARY)?;
        let dir = tempfile::Builder::new().prefix("knet-xtests-").tempdir().context("making a data directory")?;
        let data_dir = dir.path().to_path_buf();
        let mut server = ApiServer {
            dir: Some(dir),
            data_dir,
            port: 0,
            bin,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        // The free port may be taken between asking and binding: try a few.
        let mut last_err = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(e) => {
                    server.kill9();
                    let in_use = server.log().contains("in use");
                    last_err = Some(e);
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("knet-apiserver did not start")))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The admin kubeconfig the server wrote.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.data_dir.join(KUBECONFIG_FILE)
    }

    /// The cluster CA certificate (PEM) the server generated.
    pub fn ca_pem(&self) -> Result<String> {
        let path = self.data_dir.join("ca.crt");
        fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The admin's bearer token, from the admin kubeconfig.
    pub fn admin_token(&self) -> Result<String> {
        let path = self.kubeconfig_path();
        let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let config: serde_yaml::Value = serde_yaml::from_str(&text).context("parsing the admin kubeconfig")?;
        config["users"][0]["user"]["token"]
            .as_str()
            .map(str::to_string)
            .context("the admin kubeconfig has no users[0].user.token")
    }

    /// A kube-rs client from the admin kubeconfig.
    pub async fn client(&self) -> Result<kube::Client> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig =
            kube::config::Kubeconfig::read_from(self.kubeconfig_path()).context("reading the kubeconfig")?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .context("loading the kubeconfig")?;
        kube::Client::try_from(config).context("making a kube client")
    }

    /// An HTTP client that trusts the server's CA and sends no credentials (add a bearer token per request).
    pub fn http(&self) -> Result<reqwest::Client> {
        http_client(&self.ca_pem()?)
    }

    /// The text of `/metrics`, fetched as the admin.
    pub async fn metrics(&self) -> Result<String> {
        let resp = self
            .http()?
            .get(format!("{}/metrics", self.url()))
            .bearer_auth(self.admin_token()?)
            .send()
            .await
            .context("GET /metrics")?
            .error_for_status()
            .context("GET /metrics")?;
        resp.text().await.context("reading /metrics")
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL (a crash: nothing is flushed) and reaps it; nothing happens if it is
    /// not running.
    pub fn kill9(&mut self) {
        process::kill9(&mut self.child);
    }

    /// Stops the server with SIGTERM, then SIGKILL if it has not exited after 10 s.
    pub async fn stop(&mut self) -> Result<()> {
        process::stop(&mut self.child, "knet-apiserver", STOP_TIMEOUT).await
    }

    /// Stops the server if it runs and starts it again on the same data directory and port.
    pub async fn restart(&mut self) -> Result<()> {
        self.stop().await?;
        self.spawn_and_wait().await
    }

    /// Everything the server printed (all starts), from its log file.
    pub fn log(&self) -> String {
        fs::read_to_string(self.data_dir.join(LOG_FILE)).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        process::tail(&self.log(), lines)
    }

    fn command(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_string(),
            self.data_dir.display().to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--secure-port".into(),
            self.port.to_string(),
            "--admin-kubeconfig".into(),
            self.kubeconfig_path().display().to_string(),
        ];
        args.extend(self.extra_args.iter().cloned());
        args
    }

    async fn spawn_and_wait(&mut self) -> Result<()> {
        let log_path = self.data_dir.join(LOG_FILE);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let args = self.command();
        writeln!(log, "=== xtests: {} {}", self.bin.display(), args.join(" ")).context("writing the log")?;
        let stderr: File = log.try_clone().context("sharing the log file")?;
        let mut cmd = Command::new(&self.bin);
        // The log is a file: no terminal colour codes in it.
        cmd.args(&args).env("NO_COLOR", "1").stdin(Stdio::null()).stdout(log).stderr(stderr);
        let child = process::spawn_long_lived(cmd).with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready().await.map_err(|e| {
            anyhow::anyhow!(
                "{e:#}; the last lines of its log ({}):\n{}",
                log_path.display(),
                self.log_tail(LOG_TAIL_LINES)
            )
        })
    }

    /// Waits until the CA and kubeconfig exist and `GET /readyz` answers 200, anonymously, over verified TLS.
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/readyz", self.url());
        let mut last = String::from("nothing tried yet");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("checking on knet-apiserver")? {
                    self.child = None;
                    bail!("knet-apiserver exited during startup ({status})");
                }
            }
            if Instant::now() > deadline {
                bail!("knet-apiserver not ready after {READY_TIMEOUT:?} (last: {last})");
            }
            if self.kubeconfig_path().exists() {
                match self.ca_pem().and_then(|ca| http_client(&ca)) {
                    Ok(client) => match client.get(&url).timeout(Duration::from_secs(2)).send().await {
                        Ok(resp) if resp.status().is_success() => return Ok(()),
                        Ok(resp) => last = format!("GET /readyz: {}", resp.status()),
                        Err(e) => last = format!("GET /readyz: {e:#}"),
                    },
                    Err(e) => last = format!("{e:#}"),
                }
            } else {
                last = "no kubeconfig written yet".into();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A reqwest client trusting only `ca_pem`.
pub fn http_client(ca_pem: &str) -> Result<reqwest::Client> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).context("parsing the CA certificate")?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .context("making an HTTP client")
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.kill9();
        // The test harness captures this and shows it only for a failing test.
        eprintln!(
            "--- last {LOG_TAIL_LINES} lines of knet-apiserver's log ({}) ---\n{}\n--- end of log ---",
            self.data_dir.join(LOG_FILE).display(),
            self.log_tail(LOG_TAIL_LINES)
        );
        if std::env::var_os("KNET_KEEP_TEST_DIRS").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("xtests: keeping {}", dir.keep().display());
            }
        }
    }
}
