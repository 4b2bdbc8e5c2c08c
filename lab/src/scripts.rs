//! The per-host bring-up scripts (`lab/hosts/*.sh`, embedded in the binary) and running one inside a host: the
//! same steps a VM's provisioning runs (issue 9 runs them with `KNET_SUPERVISOR=systemd`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::netns::{Netns, NetnsError};

/// The scripts, by file name.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("common.sh", include_str!("../hosts/common.sh")),
    ("control-plane.sh", include_str!("../hosts/control-plane.sh")),
    ("worker.sh", include_str!("../hosts/worker.sh")),
    ("outside.sh", include_str!("../hosts/outside.sh")),
];

/// Why a script did not run through.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("writing {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("running {script} in {host}: {source}")]
    Run { script: String, host: String, source: std::io::Error },
    #[error("{script} failed in {host} (log {log}):\n{tail}")]
    Failed { script: String, host: String, log: String, tail: String },
}

/// Writes the scripts to `dir` and returns it.
pub fn install(dir: &Path) -> Result<PathBuf, ScriptError> {
    let write_err = |path: &Path, source| ScriptError::Write { path: path.display().to_string(), source };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
    for (name, text) in SCRIPTS {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| write_err(&path, e))?;
    }
    Ok(dir.to_path_buf())
}

/// Runs `bash SCRIPT` inside `ns` (network namespace only) with `env`, its output appended to `log`.
pub fn run(ns: &Netns, script: &Path, env: &BTreeMap<String, String>, log: &Path) -> Result<(), ScriptError> {
    let shown = script.display().to_string();
    let host = ns.name().to_string();
    let run_err = |source| ScriptError::Run { script: shown.clone(), host: host.clone(), source };
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent).map_err(run_err)?;
    }
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(run_err)?;
    let err = out.try_clone().map_err(run_err)?;
    let status = ns
        .command("bash")?
        .arg(script)
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(run_err)?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        return Err(ScriptError::Failed { script: shown, host, log: log.display().to_string(), tail });
    }
    Ok(())
}
