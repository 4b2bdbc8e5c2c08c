//! The real kubectl (v1.34) run against a test's API server with `--kubeconfig`, default flags otherwise.
//!
//! The binary is `$KNET_KUBECTL`, else `target/tools/kubectl` in the workspace (where
//! `scripts/install-kubectl.sh` puts it), else `kubectl` on `PATH`; it is checked once to be v1.34.x, since
//! an older kubectl (like the distribution's) speaks a different dialect and would make tests lie. kubectl's
//! discovery cache goes to the server's data directory (`KUBECACHEDIR`), and the user's kuberc is ignored
//! (`KUBERC=off`), so nothing outside the test changes what kubectl does.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

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

/// A kubectl bound to one API server's kubeconfig. Commands run synchronously (the server is another
/// process, so blocking the test's thread is fine).
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// A binary chosen with [`Kubectl::with_binary`]; else [`kubectl_binary`].
    bin: Option<PathBuf>,
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
        Kubectl {
            bin: None,
            kubeconfig: kubeconfig.to_path_buf(),
            cache_dir: cache_dir.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Uses `bin` instead of the usual search; it must be kubectl v1.34.x too.
    pub fn with_binary(mut self, bin: &Path) -> Result<Kubectl> {
        check_version(bin)?;
        self.bin = Some(bin.to_path_buf());
        Ok(self)
    }

    /// How long one command may run before it is killed and reported as an error (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Kubectl {
        self.timeout = timeout;
        self
    }

    fn command(&self, args: &[&str]) -> Result<(Command, Vec<String>)> {
        let bin = match &self.bin {
            Some(bin) => bin.clone(),
            None => kubectl_binary()?,
        };
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(&args)
            .env_remove("KUBECONFIG")
            .env("KUBECACHEDIR", &self.cache_dir)
            .env("KUBERC", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Ok((cmd, args))
    }

    /// Runs `kubectl --kubeconfig K <args>` and collects its output (a non-zero exit is not an error here;
    /// use [`KubectlOutput::ok`]).
    pub fn run(&self, args: &[&str]) -> Result<KubectlOutput> {
        self.run_inner(args, None)
    }

    /// [`Kubectl::run`] on a blocking thread, so the test's own tasks (fake nodes, watches, kill loops) keep
    /// running meanwhile; returns stdout and fails on a non-zero exit.
    pub async fn stdout_async(&self, args: &[&str]) -> Result<String> {
        let k = self.clone();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            Ok(k.run(&refs)?.ok()?.stdout)
        })
        .await
        .context("kubectl thread")?
    }

    /// [`Kubectl::run`] with `stdin` fed to kubectl.
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Result<KubectlOutput> {
        self.run_inner(args, Some(stdin))
    }

    /// `kubectl apply -f -` with `yaml` on stdin.
    pub fn apply_yaml(&self, yaml: &str) -> Result<KubectlOutput> {
        self.run_with_stdin(&["apply", "-f", "-"], yaml)
    }

    fn run_inner(&self, args: &[&str], stdin: Option<&str>) -> Result<KubectlOutput> {
        let (mut cmd, args) = self.command(args)?;
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = process::spawn_long_lived(cmd).context("starting kubectl")?;
        let pid = child.id();
        // Feed stdin from its own thread so a kubectl that prints a lot before reading cannot deadlock us.
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let input = input.to_string();
            std::thread::spawn(move || {
                let _ = pipe.write_all(input.as_bytes());
                // Dropping the pipe closes it: kubectl sees the end of its input.
            });
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(self.timeout) {
            Ok(out) => out.context("waiting for kubectl")?,
            Err(_) => {
                let _ = process::signal(pid, process::SIGKILL);
                bail!("kubectl {} did not finish within {:?}", args.join(" "), self.timeout);
            }
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
    pub fn spawn(&self, args: &[&str]) -> Result<KubectlProcess> {
        let (mut cmd, args) = self.command(args)?;
        cmd.stderr(Stdio::null());
        let mut child = process::spawn_long_lived(cmd).context("starting kubectl")?;
        let stdout = child.stdout.take().context("kubectl has no stdout pipe")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(KubectlProcess { args, child, lines })
    }
}

/// A running kubectl, see [`Kubectl::spawn`].
pub struct KubectlProcess {
    args: Vec<String>,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl KubectlProcess {
    /// The next line kubectl prints, or `None` when it exited; an error after `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Result<Option<String>> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(Some(line)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("kubectl {} printed no line within {timeout:?}", self.args.join(" "))
            }
        }
    }

    /// Reads lines until one satisfies `pred` and returns it; an error if kubectl exits or `timeout` passes
    /// first (the error lists what was printed).
    pub fn wait_for_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Ok(Some(line)) if pred(&line) => return Ok(line),
                Ok(Some(line)) => seen.push(line),
                Ok(None) => bail!("kubectl {} exited; it printed:\n{}", self.args.join(" "), seen.join("\n")),
                Err(e) => return Err(e.context(format!("it printed:\n{}", seen.join("\n")))),
            }
        }
    }

    /// Kills kubectl now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KubectlProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in kubectl: answers `version` like kubectl `minor`, otherwise runs `body` (sh).
    fn fake_kubectl(dir: &Path, minor: &str, body: &str) -> PathBuf {
        let path = dir.join("kubectl");
        let script = format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = version ] && {{ echo '{{\"clientVersion\":{{\"major\":\"1\",\"minor\":\"{minor}\",\"gitVersion\":\"v1.{minor}.2\"}}}}'; exit 0; }}; done\n{body}\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn fake(dir: &Path, body: &str) -> Kubectl {
        let bin = fake_kubectl(dir, "34", body);
        Kubectl::new(&dir.join("kc"), &dir.join("cache")).with_binary(&bin).unwrap()
    }

    #[test]
    fn an_old_kubectl_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_kubectl(dir.path(), "32", "");
        let err = check_version(&bin).unwrap_err().to_string();
        assert!(err.contains("is kubectl v1.32.2, the tests need v1.34.x"), "{err}");
        assert!(Kubectl::new(dir.path(), dir.path()).with_binary(&bin).is_err());
    }

    #[test]
    fn a_v1_34_kubectl_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_version(&fake_kubectl(dir.path(), "34", "")).unwrap(), "v1.34.2");
    }

    #[test]
    fn a_missing_binary_is_an_error() {
        assert!(check_version(Path::new("/nonexistent/kubectl")).is_err());
    }

    #[test]
    fn run_passes_kubeconfig_environment_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let k = fake(
            dir.path(),
            "echo \"args: $*\"; echo \"env: $KUBERC $KUBECACHEDIR ${KUBECONFIG:-unset}\"; cat; echo oops >&2; exit 3",
        );
        let out = k.apply_yaml("kind: Service\n").unwrap();
        assert!(!out.success());
        let kc = dir.path().join("kc");
        let cache = dir.path().join("cache");
        assert_eq!(
            out.stdout,
            format!(
                "args: --kubeconfig {} apply -f -\nenv: off {} unset\nkind: Service\n",
                kc.display(),
                cache.display()
            )
        );
        assert_eq!(out.stderr, "oops\n");
        let err = out.ok().unwrap_err().to_string();
        assert!(err.contains("kubectl apply -f - failed") && err.contains("oops"), "{err}");
    }

    #[test]
    fn a_hung_kubectl_is_killed_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let k = fake(dir.path(), "exec sleep 30").with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let err = k.run(&["get", "pods"]).unwrap_err().to_string();
        assert!(err.contains("did not finish within"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn spawned_kubectl_is_read_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let k = fake(dir.path(), "echo NAME; sleep 0.2; echo web 10.96.0.5; sleep 0.2; echo db 10.96.0.6");
        let mut watch = k.spawn(&["get", "svc", "-w"]).unwrap();
        assert_eq!(watch.next_line(Duration::from_secs(10)).unwrap().as_deref(), Some("NAME"));
        let line = watch.wait_for_line(Duration::from_secs(10), |l| l.starts_with("db")).unwrap();
        assert_eq!(line, "db 10.96.0.6");
        assert_eq!(watch.next_line(Duration::from_secs(10)).unwrap(), None);
        let err = k.spawn(&["x"]).unwrap().wait_for_line(Duration::from_secs(10), |l| l == "nope").unwrap_err();
        assert!(format!("{err:#}").contains("web 10.96.0.5"), "{err:#}");
    }
}
