//! Child processes that never outlive the test process: each is started with the Linux "parent death
//! signal" set to SIGKILL, so even a test binary that is itself killed (or aborts) takes them down. That
//! signal follows the *thread* that forked, so long-lived children are forked from one thread that lives as
//! long as the process.

use std::io;
use std::os::raw::{c_int, c_ulong};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

const PR_SET_PDEATHSIG: c_int = 1;
pub const SIGKILL: c_int = 9;
pub const SIGTERM: c_int = 15;

extern "C" {
    fn prctl(option: c_int, ...) -> c_int;
    fn getppid() -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
}

/// Makes `cmd`'s process get SIGKILL when the forking thread (or the whole test process) dies.
pub fn kill_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as c_int;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || {
            if prctl(PR_SET_PDEATHSIG, SIGKILL as c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the signal was armed.
            if getppid() != parent {
                return Err(io::Error::other("the test process exited while starting a child"));
            }
            Ok(())
        });
    }
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: c_int) -> io::Result<()> {
    let pid = c_int::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` with [`kill_with_parent`] from the process-long spawner thread.
pub fn spawn_long_lived(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("xtests-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| eprintln!("xtests: cannot start the spawner thread: {e}"));
        Mutex::new(tx)
    });
    kill_with_parent(&mut cmd);
    let (reply_tx, reply_rx) = mpsc::channel();
    sender
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    reply_rx.recv().map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// Kills `child` with SIGKILL (a crash: nothing is flushed) and reaps it; nothing happens if there is none.
pub fn kill9(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        // Fails only if the process already exited, which is what was wanted.
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Stops `child` (named `name` in errors) with SIGTERM, then SIGKILL if it has not exited after `timeout`.
pub async fn stop(child: &mut Option<Child>, name: &str, timeout: std::time::Duration) -> anyhow::Result<()> {
    use anyhow::Context;
    let Some(mut c) = child.take() else { return Ok(()) };
    let _ = signal(c.id(), SIGTERM);
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if c.try_wait().with_context(|| format!("waiting for {name}"))?.is_some() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    c.kill().with_context(|| format!("killing {name}"))?;
    c.wait().with_context(|| format!("reaping {name}"))?;
    Ok(())
}

/// The last `lines` lines of `text` (a process log), for failure messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn alive(pid: u32) -> bool {
        // Signal 0 only checks that the process exists.
        signal(pid, 0).is_ok()
    }

    #[test]
    fn long_lived_children_survive_their_starting_thread() {
        let child = std::thread::spawn(|| {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            spawn_long_lived(cmd).unwrap()
        })
        .join()
        .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(alive(child.id()), "the child died with the thread that asked for it");
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn children_of_a_dead_thread_die_with_it() {
        let pid = std::thread::spawn(|| {
            let mut cmd = Command::new("sleep");
            cmd.arg("30");
            kill_with_parent(&mut cmd);
            // Leak the handle on purpose: only the death signal may stop the child.
            let child = cmd.spawn().unwrap();
            let pid = child.id();
            std::mem::forget(child);
            pid
        })
        .join()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        // The child becomes a zombie of this process once killed; /proc shows its state.
        while Instant::now() < deadline {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if state.is_empty() || state.contains(") Z ") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("child {pid} outlived the thread that started it");
    }

    #[test]
    fn signal_reports_missing_processes() {
        assert!(signal(u32::MAX / 2, 0).is_err());
    }
}
