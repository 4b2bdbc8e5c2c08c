//! `attach`: connects a remote-command session to a running container's stdio (the runtime's [`Attachment`]).
//! The session ends when the container's process ends (status Success, as the kubelet answers an attach) or when
//! the client leaves; leaving never stops the container.

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::remotecommand::{Outcome, Streams, STDERR, STDOUT};
use super::route::StreamOptions;
use super::runtime::Attachment;

fn forward(
    mut rx: broadcast::Receiver<Bytes>,
    channel: u8,
    out: mpsc::Sender<(u8, Bytes)>,
    mut exited: watch::Receiver<Option<i32>>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                r = rx.recv() => match r {
                    Ok(data) => {
                        if out.send((channel, data)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = wait_exit(&mut exited) => {
                    // The process ended: pass on what it wrote last, then finish.
                    while let Ok(data) = rx.try_recv() {
                        if out.send((channel, data)).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
            }
        }
    });
}

/// Waits until the container's process ended (or the runtime dropped the watch).
async fn wait_exit(exited: &mut watch::Receiver<Option<i32>>) {
    loop {
        if exited.borrow_and_update().is_some() {
            return;
        }
        if exited.changed().await.is_err() {
            return;
        }
    }
}

/// The session streams of an attach.
pub fn streams(attachment: Attachment, opts: &StreamOptions) -> Streams {
    let (out_tx, out_rx) = mpsc::channel(32);
    if opts.stdout || attachment.tty {
        forward(attachment.stdout, STDOUT, out_tx.clone(), attachment.exited.clone());
    }
    if let (Some(stderr), true, false) = (attachment.stderr, opts.stderr, attachment.tty) {
        forward(stderr, STDERR, out_tx.clone(), attachment.exited.clone());
    }
    drop(out_tx);
    let (done_tx, done_rx) = oneshot::channel();
    let mut exited = attachment.exited;
    tokio::spawn(async move {
        wait_exit(&mut exited).await;
        let _ = done_tx.send(Outcome::Success);
    });
    Streams {
        stdin: if opts.stdin { attachment.stdin } else { None },
        resize: if attachment.tty { attachment.resize } else { None },
        output: out_rx,
        outcome: done_rx,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_until_exit_then_success() {
        let (out_tx, out_rx) = broadcast::channel(8);
        let (exit_tx, exit_rx) = watch::channel(None);
        let (in_tx, mut in_rx) = mpsc::channel(4);
        let attachment =
            Attachment { tty: false, stdin: Some(in_tx), stdout: out_rx, stderr: None, resize: None, exited: exit_rx };
        let opts = StreamOptions { stdin: true, stdout: true, stderr: true, tty: false, command: vec![] };
        let mut s = streams(attachment, &opts);
        s.stdin.as_ref().unwrap().send(Bytes::from_static(b"in")).await.unwrap();
        assert_eq!(in_rx.recv().await.unwrap(), Bytes::from_static(b"in"));
        out_tx.send(Bytes::from_static(b"hello")).unwrap();
        assert_eq!(s.output.recv().await.unwrap(), (STDOUT, Bytes::from_static(b"hello")));
        out_tx.send(Bytes::from_static(b"last")).unwrap();
        exit_tx.send(Some(0)).unwrap();
        assert_eq!(s.output.recv().await.unwrap(), (STDOUT, Bytes::from_static(b"last")));
        assert!(s.output.recv().await.is_none());
        assert_eq!(s.outcome.await.unwrap(), Outcome::Success);
    }
}
