//! Starting a process inside a pod: a child that joins the sandbox's network, UTS and mount namespaces (which
//! also puts it under the pod's root) before it executes the program. Used for containers and for `exec`.
//!
//! The namespace files are opened in the agent; the child (single-threaded after fork) only calls `setns` and
//! `chdir` before `exec`, which is async-signal-safe.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crate::server::runtime::ExecTarget;

/// Why a process could not be prepared to run in a pod.
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    #[error("opening namespace {path} of the pod's sandbox: {source}")]
    OpenNamespace { path: String, source: std::io::Error },
}

/// The namespaces a process in a pod joins, in the order it joins them (mount last: it changes the root).
pub const NAMESPACES: [(&str, nix::sched::CloneFlags); 3] = [
    ("net", nix::sched::CloneFlags::CLONE_NEWNET),
    ("uts", nix::sched::CloneFlags::CLONE_NEWUTS),
    ("mnt", nix::sched::CloneFlags::CLONE_NEWNS),
];

/// A command that runs `argv` inside the pod `target` names, with exactly the target's environment and working
/// directory. Stdio is left for the caller to set.
pub fn command_in_pod(target: &ExecTarget, argv: &[String]) -> Result<tokio::process::Command, EnterError> {
    let mut fds: Vec<(OwnedFd, nix::sched::CloneFlags)> = Vec::with_capacity(NAMESPACES.len());
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{}/ns/{name}", target.pid);
        let file =
            std::fs::File::open(Path::new(&path)).map_err(|source| EnterError::OpenNamespace { path, source })?;
        fds.push((OwnedFd::from(file), flag));
    }
    let (program, args) = match argv.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (String::from("/bin/sh"), Vec::new()),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_clear().envs(target.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let dir = target.working_dir.clone().unwrap_or_else(|| "/".into());
    let dir = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap_or_else(|_| c"/".to_owned());
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe system calls
    // (setns, chdir) on file descriptors and a C string prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            for (fd, flag) in &fds {
                if libc_setns(fd.as_raw_fd(), flag.bits()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if nix::libc::chdir(dir.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

fn libc_setns(fd: i32, nstype: i32) -> i32 {
    // SAFETY: setns only reads its integer arguments.
    unsafe { nix::libc::setns(fd, nstype) }
}
