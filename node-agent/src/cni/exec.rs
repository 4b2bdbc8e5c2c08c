//! Running one plugin binary the way the CNI spec says a runtime does: the binary named by `type` from the
//! plugin path, `CNI_*` variables in its environment, the plugin's configuration on stdin, a result or an error
//! object on stdout.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::result::{parse_error, PluginError};

/// The environment of one plugin invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// `ADD`, `DEL`, `CHECK`, `GC`, `STATUS` or `VERSION`.
    pub command: &'static str,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS`, already rendered.
    pub args: String,
}

/// Why a plugin could not be run or failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("failed to find plugin {plugin:?} in path {path:?}")]
    NotFound { plugin: String, path: Vec<PathBuf> },
    #[error("running CNI plugin {plugin}: {source}")]
    Spawn { plugin: String, source: std::io::Error },
    #[error("plugin type={plugin:?} failed ({command}): {error}")]
    Plugin { plugin: String, command: &'static str, error: PluginError },
    #[error("plugin type={plugin:?} ({command}) printed an invalid result: {reason}")]
    BadResult { plugin: String, command: &'static str, reason: String },
}

impl ExecError {
    /// The CNI error code, when the plugin reported one.
    pub fn code(&self) -> Option<u32> {
        match self {
            ExecError::Plugin { error, .. } => Some(error.code),
            _ => None,
        }
    }
}

/// The first `dir/plugin` that is a file, in `bin_dirs` order.
pub fn find_plugin(bin_dirs: &[PathBuf], plugin: &str) -> Result<PathBuf, ExecError> {
    bin_dirs
        .iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| ExecError::NotFound { plugin: plugin.to_string(), path: bin_dirs.to_vec() })
}

/// `CNI_PATH`: the plugin directories joined with `:`.
pub fn cni_path(bin_dirs: &[PathBuf]) -> String {
    bin_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":")
}

/// Runs `plugin` with `stdin`; returns its stdout (a result, or empty for DEL/CHECK/GC/STATUS).
pub async fn run(
    bin_dirs: &[PathBuf],
    plugin: &str,
    inv: &Invocation,
    stdin: &[u8],
) -> Result<serde_json::Value, ExecError> {
    let binary = find_plugin(bin_dirs, plugin)?;
    run_binary(&binary, &cni_path(bin_dirs), plugin, inv, stdin).await
}

async fn run_binary(
    binary: &Path,
    path: &str,
    plugin: &str,
    inv: &Invocation,
    stdin: &[u8],
) -> Result<serde_json::Value, ExecError> {
    let spawn_err = |source| ExecError::Spawn { plugin: plugin.to_string(), source };
    let mut cmd = tokio::process::Command::new(binary);
    cmd.env_clear()
        .env("CNI_COMMAND", inv.command)
        .env("CNI_PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if inv.command != "GC" && inv.command != "STATUS" && inv.command != "VERSION" {
        cmd.env("CNI_CONTAINERID", &inv.container_id)
            .env("CNI_NETNS", &inv.netns)
            .env("CNI_IFNAME", &inv.ifname)
            .env("CNI_ARGS", &inv.args);
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(mut pipe) = child.stdin.take() {
        // A plugin that exits without reading its input is reported by its exit status, not by this write.
        let _ = pipe.write_all(stdin).await;
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    if !out.status.success() {
        let error = parse_error(&out.stdout).unwrap_or_else(|| PluginError {
            code: 999,
            msg: format!("exited with {}", out.status),
            details: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
        return Err(ExecError::Plugin { plugin: plugin.to_string(), command: inv.command, error });
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&out.stdout).map_err(|e| ExecError::BadResult {
        plugin: plugin.to_string(),
        command: inv.command,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn passes_the_environment_and_reads_results_and_errors() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        script(
            b.path(),
            "echoer",
            r#"in=$(cat); printf '{"cniVersion":"1.0.0","env":"%s %s %s %s %s %s","in":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$in""#,
        );
        script(b.path(), "failer", r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"bad","details":"why"}'; exit 1"#);
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        let inv = Invocation {
            command: "ADD",
            container_id: "c1".into(),
            netns: "/run/netns/x".into(),
            ifname: "eth0".into(),
            args: "IgnoreUnknown=1".into(),
        };
        let out = run(&dirs, "echoer", &inv, br#"{"name":"n"}"#).await.unwrap();
        let want_path = format!("{}:{}", a.path().display(), b.path().display());
        assert_eq!(out["env"], format!("ADD c1 /run/netns/x eth0 IgnoreUnknown=1 {want_path}"));
        assert_eq!(out["in"]["name"], "n");
        let err = run(&dirs, "failer", &inv, b"{}").await.unwrap_err();
        assert_eq!(err.code(), Some(7));
        assert!(err.to_string().contains("bad: why"), "{err}");
        let missing = run(&dirs, "nope", &inv, b"{}").await.unwrap_err();
        assert!(missing.to_string().starts_with("failed to find plugin \"nope\""), "{missing}");
    }
}
