//! `exec`: starts the command inside the container (`pods::enter::command_in_pod`), with pipes or, for `-t`, a
//! pty whose slave becomes the command's controlling terminal, and wires it to a remote-command session.

use std::process::Stdio;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::pty;
use super::remotecommand::{Outcome, Streams, STDERR, STDOUT};
use super::route::StreamOptions;
use super::runtime::{ExecTarget, TerminalSize};
use crate::pods::enter::command_in_pod;

const CHUNK: usize = 32 * 1024;

/// What an exit status means to kubectl: 0 success, a code, or 128 + the signal that killed it.
pub fn outcome_of(status: std::process::ExitStatus) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => Outcome::Success,
        (Some(code), _) => Outcome::Exit(code),
        (None, Some(sig)) => Outcome::Exit(128 + sig),
        (None, None) => Outcome::Exit(1),
    }
}

/// The message for a command that could not be started, as the kubelet words it.
pub fn start_error(command: &[String], e: &std::io::Error) -> String {
    let program = command.first().map(String::as_str).unwrap_or("");
    if e.kind() == std::io::ErrorKind::NotFound {
        return format!(
            "error executing command in container: failed to exec in container: exec: {program:?}: executable file \
             not found in $PATH"
        );
    }
    format!("error executing command in container: failed to exec in container: exec: {program:?}: {e}")
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(mut r: R, channel: u8, out: mpsc::Sender<(u8, Bytes)>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.send((channel, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Starts `opts.command` in the container `target` names; errors are the message for the error channel.
pub fn start(target: &ExecTarget, opts: &StreamOptions) -> Result<Streams, String> {
    let command = opts.command.clone();
    let mut cmd = command_in_pod(target, &command).map_err(|e| format!("error executing command in container: {e}"))?;
    cmd.kill_on_drop(false);
    let (out_tx, out_rx) = mpsc::channel::<(u8, Bytes)>(32);
    let (done_tx, done_rx) = oneshot::channel();
    let mut stdin_tx = None;
    let mut resize_tx = None;
    if opts.tty {
        let pair = pty::open().map_err(|e| format!("error executing command in container: opening a pty: {e}"))?;
        let dup = |fd: &std::os::fd::OwnedFd| {
            fd.try_clone().map_err(|e| format!("error executing command in container: sharing the pty: {e}"))
        };
        cmd.stdin(Stdio::from(dup(&pair.slave)?))
            .stdout(Stdio::from(dup(&pair.slave)?))
            .stderr(Stdio::from(dup(&pair.slave)?));
        // SAFETY: runs in the forked child before exec and only makes async-signal-safe system calls.
        unsafe {
            cmd.pre_exec(|| pty::become_terminal_session_leader());
        }
        let mut child = cmd.spawn().map_err(|e| start_error(&command, &e))?;
        drop(pair.slave);
        drop(cmd);
        let master =
            pty::Master::new(pair.master).map_err(|e| format!("error executing command in container: the pty: {e}"))?;
        let reader = master.clone();
        let out = out_tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; CHUNK];
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 || out.send((STDOUT, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                    break;
                }
            }
        });
        if opts.stdin {
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            let writer = master.clone();
            tokio::spawn(async move {
                while let Some(data) = rx.recv().await {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
            });
            stdin_tx = Some(tx);
        }
        let (tx, mut rx) = mpsc::channel::<TerminalSize>(4);
        let sizer = master;
        tokio::spawn(async move {
            while let Some(size) = rx.recv().await {
                let _ = sizer.set_size(size);
            }
        });
        resize_tx = Some(tx);
        tokio::spawn(async move {
            let outcome = match child.wait().await {
                Ok(status) => outcome_of(status),
                Err(e) => Outcome::Error(format!("error executing command in container: waiting: {e}")),
            };
            let _ = done_tx.send(outcome);
        });
    } else {
        cmd.stdin(if opts.stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(if opts.stdout { Stdio::piped() } else { Stdio::null() })
            .stderr(if opts.stderr { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().map_err(|e| start_error(&command, &e))?;
        drop(cmd);
        if let Some(stdout) = child.stdout.take() {
            pump(stdout, STDOUT, out_tx.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            pump(stderr, STDERR, out_tx.clone());
        }
        if let Some(mut stdin) = child.stdin.take() {
            let (tx, mut rx) = mpsc::channel::<Bytes>(16);
            tokio::spawn(async move {
                while let Some(data) = rx.recv().await {
                    if stdin.write_all(&data).await.is_err() {
                        break;
                    }
                }
                // Dropping stdin closes the command's input.
            });
            stdin_tx = Some(tx);
        }
        tokio::spawn(async move {
            let outcome = match child.wait().await {
                Ok(status) => outcome_of(status),
                Err(e) => Outcome::Error(format!("error executing command in container: waiting: {e}")),
            };
            let _ = done_tx.send(outcome);
        });
    }
    drop(out_tx);
    Ok(Streams { stdin: stdin_tx, resize: resize_tx, output: out_rx, outcome: done_rx })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_statuses() {
        assert_eq!(outcome_of(std::process::ExitStatus::from_raw(0)), Outcome::Success);
        assert_eq!(outcome_of(std::process::ExitStatus::from_raw(3 << 8)), Outcome::Exit(3));
        assert_eq!(outcome_of(std::process::ExitStatus::from_raw(9)), Outcome::Exit(137));
        let e = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(start_error(&["nosuch".into()], &e).contains("\"nosuch\": executable file not found in $PATH"));
    }

    fn own_namespaces() -> ExecTarget {
        ExecTarget {
            pid: std::process::id(),
            env: vec![("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into()), ("GREETING".into(), "hi".into())],
            working_dir: Some("/tmp".into()),
        }
    }

    async fn collect(mut s: Streams) -> (Vec<u8>, Vec<u8>, Outcome) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some((ch, data)) = s.output.recv().await {
            if ch == STDOUT {
                out.extend_from_slice(&data)
            } else {
                err.extend_from_slice(&data)
            }
        }
        (out, err, s.outcome.await.unwrap())
    }

    fn opts(cmd: &str, stdin: bool, tty: bool) -> StreamOptions {
        StreamOptions { stdin, stdout: true, stderr: !tty, tty, command: vec!["sh".into(), "-c".into(), cmd.into()] }
    }

    // Joining one's own namespaces needs CAP_SYS_ADMIN.
    fn root() -> bool {
        let is_root = nix::unistd::Uid::effective().is_root();
        if !is_root {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "exec tests need root in CI");
            eprintln!("skipping: exec into namespaces needs root");
        }
        is_root
    }

    #[tokio::test]
    async fn pipes_environment_stdin_and_exit_code() {
        if !root() {
            return;
        }
        let s = start(&own_namespaces(), &opts("echo $GREETING; pwd; echo oops >&2; exit 3", false, false)).unwrap();
        let (out, err, outcome) = collect(s).await;
        assert_eq!(String::from_utf8_lossy(&out), "hi\n/tmp\n");
        assert_eq!(String::from_utf8_lossy(&err), "oops\n");
        assert_eq!(outcome, Outcome::Exit(3));

        let s = start(&own_namespaces(), &opts("tr a-z A-Z", true, false)).unwrap();
        let stdin = s.stdin.clone().unwrap();
        stdin.send(Bytes::from_static(b"shout\n")).await.unwrap();
        drop(stdin);
        let mut s = s;
        s.stdin = None;
        let (out, _, outcome) = collect(s).await;
        assert_eq!((String::from_utf8_lossy(&out).as_ref(), outcome), ("SHOUT\n", Outcome::Success));
    }

    #[tokio::test]
    async fn a_tty_is_the_controlling_terminal() {
        if !root() {
            return;
        }
        let s = start(&own_namespaces(), &opts("stty size; tty -s && echo is-a-tty", true, true)).unwrap();
        s.resize.as_ref().unwrap().send(TerminalSize { width: 100, height: 30 }).await.unwrap();
        // The resize races the command: give it a moment before the command reads the size.
        let (out, _, outcome) = collect(s).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("is-a-tty"), "{text:?}");
        assert_eq!(outcome, Outcome::Success);
    }

    #[test]
    fn a_missing_program_is_an_error_message() {
        if !root() {
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let o = StreamOptions { command: vec!["/no/such/program".into()], ..opts("", false, false) };
            let err = start(&own_namespaces(), &o).err().unwrap();
            assert!(err.contains("\"/no/such/program\": executable file not found"), "{err}");
        });
    }
}
