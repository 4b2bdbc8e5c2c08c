//! The real kubectl (v1.34) run against a test's API server with `--kubeconfig`, default flags otherwise.
//!
//! The binary is `$KNET_KUBECTL`, else `target/tools/kubectl` in the workspace (where
//! `scripts/install-kubectl.sh` puts it), else `kubectl` on `PATH`; it is checked once to be v1.34.x, since
//! an older kubectl (like the distribution's) speaks a different dialect and would make tests lie. kubectl's
//! discovery cache goes to the server's data directory (`KUBECACHEDIR`), and the user's kuberc is ignored
//! (`KUBERC=off`), so nothing outside the test changes what kubectl does.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::apiserver::ApiServer;
use crate::process;

/// The kubectl minor version the tests are written against.
pub const KUBECTL_MINOR: &str = "34";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The candidates for the kubectl binary, in order of preference.
fn candidates() -> Vec<PathBuf> {
    if let Some(path) = std::env::var_os("KNET_KUBECTL") {
        return vec![PathBuf::from(path)];
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    vec![workspace.join("target/tools/kubectl"), PathBuf::from("kubectl")]
}

/// The kubectl binary's gitVersion if it is v1.34.x, else an error saying what was found.
fn check_version(bin: &Path) -> Result<String> {
    let out = std::process::Command::new(bin)
        .args(["version", "--client", "-o", "json"])
        .env("KUBERC", "off")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} version --client", bin.display()))?;
    if !out.status.success() {
        bail!("{} version --client failed: {}", bin.display(), String::from_utf8_lossy(&out.stderr));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).with_context(|| format!("{} version printed no JSON", bin.display()))?;
    let version = &json["clientVersion"];
    let git_version = version["gitVersion"].as_str().unwrap_or("unknown").to_string();
    if version["major"] != "1" || version["minor"].as_str().map(|m| m.trim_end_matches('+')) != Some(KUBECTL_MINOR) {
        bail!(
            "{} is kubectl {git_version}, the tests need v1.{KUBECTL_MINOR}.x: run scripts/install-kubectl.sh \
             or set KNET_KUBECTL",
            bin.display()
        );
    }
    Ok(git_version)
}

/// The kubectl binary to use, found and version-checked once per test process.
pub fn kubectl_binary() -> Result<PathBuf> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let mut tried = Vec::new();
        for bin in candidates() {
            let on_path = bin.components().count() == 1;
            if !on_path && !bin.is_file() {
                tried.push(format!("{}: not found", bin.display()));
                continue;
            }
            match check_version(&bin) {
                Ok(_) => return Ok(bin),
                Err(e) => tried.push(format!("{e:#}")),
            }
        }
        Err(format!("no usable kubectl v1.{KUBECTL_MINOR}: {}", tried.join("; ")))
    });
    found.clone().map_err(anyhow::Error::msg)
}

/// What a finished kubectl printed.
#[derive(Debug, Clone)]
pub struct KubectlOutput {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl KubectlOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// `self` if kubectl exited 0, else an error with the command and what it printed.
    pub fn ok(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            bail!(
                "kubectl {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
                self.args.join(" "),
                self.status,
                self.stdout,
                self.stderr
            )
        }
    }
}

/// A kubectl bound to one API server's kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    timeout: Duration,
}

/// A kubectl for `api`'s admin kubeconfig.
pub fn kubectl(api: &ApiServer) -> Kubectl {
    Kubectl::new(&api.kubeconfig_path(), &api.data_dir().join("kubectl-cache"))
}

impl Kubectl {
    pub fn new(kubeconfig: &Path, cache_dir: &Path) -> Kubectl {
        Kubectl { kubeconfig: kubeconfig.to_path_buf(), cache_dir: cache_dir.to_path_buf(), timeout: DEFAULT_TIMEOUT }
    }

    /// How long one command may run before it is killed and reported as an error (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Kubectl {
        self.timeout = timeout;
        self
    }

    fn command<I, S>(&self, args: I) -> Result<(Command, Vec<String>)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let bin = kubectl_binary()?;
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(&args)
            .env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", &self.cache_dir)
            .env("KUBERC", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        process::kill_with_parent_tokio(&mut cmd);
        Ok((cmd, args))
    }

    /// Runs `kubectl --kubeconfig K <args>` and collects its output (a non-zero exit is not an error here;
    /// use [`KubectlOutput::ok`]).
    pub async fn run<I, S>(&self, args: I) -> Result<KubectlOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_inner(args, None).await
    }

    /// [`Kubectl::run`] with `stdin` fed to kubectl.
    pub async fn run_with_stdin<I, S>(&self, args: I, stdin: &str) -> Result<KubectlOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_inner(args, Some(stdin)).await
    }

    /// `kubectl apply -f -` with `yaml` on stdin.
    pub async fn apply_yaml(&self, yaml: &str) -> Result<KubectlOutput> {
        self.run_with_stdin(["apply", "-f", "-"], yaml).await
    }

    async fn run_inner<I, S>(&self, args: I, stdin: Option<&str>) -> Result<KubectlOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (mut cmd, args) = self.command(args)?;
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().context("starting kubectl")?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes()).await.context("writing kubectl's stdin")?;
            // Dropping the pipe closes it: kubectl sees end of input.
        }
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(out) => out.context("waiting for kubectl")?,
            Err(_) => bail!("kubectl {} did not finish within {:?}", args.join(" "), self.timeout),
        };
        Ok(KubectlOutput {
            args,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Starts a long-running kubectl (e.g. `get svc -w`) whose stdout is read line by line; it is killed
    /// when the returned handle drops.
    pub fn spawn<I, S>(&self, args: I) -> Result<KubectlProcess>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let (mut cmd, args) = self.command(args)?;
        cmd.stderr(Stdio::null());
        let mut child = cmd.spawn().context("starting kubectl")?;
        let stdout = child.stdout.take().context("kubectl has no stdout pipe")?;
        Ok(KubectlProcess { args, child, lines: BufReader::new(stdout).lines() })
    }
}

/// A running kubectl, see [`Kubectl::spawn`].
pub struct KubectlProcess {
    args: Vec<String>,
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl KubectlProcess {
    /// The next line kubectl prints, or `None` when it exited; an error after `timeout`.
    pub async fn next_line(&mut self, timeout: Duration) -> Result<Option<String>> {
        match tokio::time::timeout(timeout, self.lines.next_line()).await {
            Ok(line) => line.context("reading kubectl's output"),
            Err(_) => bail!("kubectl {} printed no line within {timeout:?}", self.args.join(" ")),
        }
    }

    /// Reads lines until one satisfies `pred` and returns it; an error if kubectl exits or `timeout` passes
    /// first (the error lists what was printed).
    pub async fn wait_for_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_line(left).await {
                Ok(Some(line)) if pred(&line) => return Ok(line),
                Ok(Some(line)) => seen.push(line),
                Ok(None) => bail!("kubectl {} exited; it printed:\n{}", self.args.join(" "), seen.join("\n")),
                Err(e) => return Err(e.context(format!("it printed:\n{}", seen.join("\n")))),
            }
        }
    }

    /// Kills kubectl now.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await.context("killing kubectl")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_kubectl_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kubectl");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho '{\"clientVersion\":{\"major\":\"1\",\"minor\":\"32\",\"gitVersion\":\"v1.32.1\"}}'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_version(&fake).unwrap_err().to_string();
        assert!(err.contains("is kubectl v1.32.1, the tests need v1.34.x"), "{err}");
    }

    #[test]
    fn a_v1_34_kubectl_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("kubectl");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho '{\"clientVersion\":{\"major\":\"1\",\"minor\":\"34\",\"gitVersion\":\"v1.34.2\"}}'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_version(&fake).unwrap(), "v1.34.2");
    }

    #[test]
    fn a_broken_binary_is_an_error() {
        assert!(check_version(Path::new("/nonexistent/kubectl")).is_err());
    }
}
