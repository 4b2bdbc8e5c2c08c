//! Delegation to an IPAM plugin found on `CNI_PATH` (SPEC.md section 4): the plugin gets our environment with
//! `CNI_COMMAND` set, the whole network configuration on stdin, and its stderr goes to ours.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::Command as CniCommand;
use crate::error::{code, CniError};
use crate::result::CniResult;

/// Finds `plugin` in the `CNI_PATH` directories.
pub fn find(plugin: &str, path: &[PathBuf]) -> Result<PathBuf, CniError> {
    if path.is_empty() {
        return Err(CniError::new(
            code::INVALID_ENVIRONMENT,
            format!("required env variables [CNI_PATH] missing: needed to run the {plugin:?} IPAM plugin"),
        ));
    }
    path.iter().map(|d| d.join(plugin)).find(|p| is_executable(p)).ok_or_else(|| {
        let dirs: Vec<String> = path.iter().map(|d| d.display().to_string()).collect();
        CniError::new(code::INVALID_NETWORK_CONFIG, format!("failed to find plugin {plugin:?} in path {dirs:?}"))
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Runs `plugin` with `command` and `stdin`; its result (ADD) or nothing. A failure carries the plugin's own
/// error code and message when it printed a spec error.
pub fn exec(plugin: &str, command: CniCommand, path: &[PathBuf], stdin: &[u8]) -> Result<Option<CniResult>, CniError> {
    let bin = find(plugin, path)?;
    let run_err = |e: std::io::Error| {
        CniError::with_details(code::IO_FAILURE, format!("running IPAM plugin {}", bin.display()), e.to_string())
    };
    let mut child = Command::new(&bin)
        .env("CNI_COMMAND", command.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(run_err)?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).map_err(run_err)?;
    }
    let out = child.wait_with_output().map_err(run_err)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        #[derive(serde::Deserialize)]
        struct Err {
            code: u32,
            #[serde(default)]
            msg: String,
            #[serde(default)]
            details: String,
        }
        return Err(match serde_json::from_str::<Err>(&text) {
            Ok(e) => CniError::with_details(e.code, format!("IPAM plugin {plugin}: {}", e.msg), e.details),
            Err(_) => CniError::with_details(
                code::IO_FAILURE,
                format!("IPAM plugin {plugin} failed ({})", out.status),
                text.trim().to_string(),
            ),
        });
    }
    if command != CniCommand::Add {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        CniError::with_details(
            code::DECODING_FAILURE,
            format!("decoding the result of IPAM plugin {plugin}"),
            e.to_string(),
        )
    })?;
    CniResult::from_value(&value).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plugins_on_the_path_or_says_where_it_looked() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("my-ipam");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = vec![PathBuf::from("/nonexistent"), tmp.path().to_path_buf()];
        assert_eq!(find("my-ipam", &path).unwrap(), bin);
        let e = find("other", &path).unwrap_err();
        assert_eq!(e.code, code::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("/nonexistent"));
        assert_eq!(find("x", &[]).unwrap_err().code, code::INVALID_ENVIRONMENT);
    }

    #[test]
    fn passes_on_the_plugins_result_and_errors() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let ok = tmp.path().join("ok");
        std::fs::write(
            &ok,
            "#!/bin/sh\ncat >/dev/null\necho '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.9.0.2/24\"}]}'\n",
        )
        .unwrap();
        let bad = tmp.path().join("bad");
        std::fs::write(&bad, "#!/bin/sh\ncat >/dev/null\necho '{\"code\":11,\"msg\":\"busy\"}'\nexit 1\n").unwrap();
        for p in [&ok, &bad] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = vec![tmp.path().to_path_buf()];
        let r = exec("ok", CniCommand::Add, &path, b"{}").unwrap().unwrap();
        assert_eq!(r.ips[0].address.to_string(), "10.9.0.2/24");
        assert_eq!(exec("ok", CniCommand::Del, &path, b"{}").unwrap(), None);
        let e = exec("bad", CniCommand::Add, &path, b"{}").unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (11, "IPAM plugin bad: busy"));
    }
}
