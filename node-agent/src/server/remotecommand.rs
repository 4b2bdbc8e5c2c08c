//! The remote-command channel protocols over a WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`,
//! `channel.k8s.io`), as kubectl v1.34 speaks them for `exec` and `attach`: every binary message starts with its
//! channel — 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize — and v5 adds the close signal `[255, channel]`.
//! The error channel carries the outcome: in v4/v5 a `metav1.Status` (`NonZeroExitCode` with an `ExitCode`
//! cause, so kubectl exits with the command's code), in the older protocol a plain message.
//!
//! [`drive`] runs one session: client input goes to the process, process output to the client, and when the
//! output is finished the outcome is written and the WebSocket closed normally.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::runtime::TerminalSize;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// v5's close signal: `[255, channel]`.
pub const CLOSE: u8 = 255;

/// The WebSocket subprotocols the kubelet API serves for exec and attach, best first.
pub const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"];

/// A negotiated channel protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V5,
    V4,
    /// `channel.k8s.io`: plain-text errors, no exit codes.
    V1,
}

impl Protocol {
    pub fn from_name(name: &str) -> Option<Protocol> {
        match name {
            "v5.channel.k8s.io" => Some(Protocol::V5),
            "v4.channel.k8s.io" => Some(Protocol::V4),
            "channel.k8s.io" | "" => Some(Protocol::V1),
            _ => None,
        }
    }
}

/// How a command or attach ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command exited with this non-zero code (128 + signal when killed).
    Exit(i32),
    /// The command could not run.
    Error(String),
}

/// What goes on the error channel for `outcome`, or nothing.
pub fn error_channel_message(protocol: Protocol, command: &[String], outcome: &Outcome) -> Option<Vec<u8>> {
    match (protocol, outcome) {
        (Protocol::V1, Outcome::Success) => None,
        (Protocol::V1, Outcome::Exit(code)) => Some(
            format!(
                "command terminated with non-zero exit code: error executing command {command:?}, exit code {code}"
            )
            .into_bytes(),
        ),
        (Protocol::V1, Outcome::Error(msg)) => Some(msg.clone().into_bytes()),
        (_, Outcome::Success) => Some(json!({"metadata": {}, "status": "Success"}).to_string().into_bytes()),
        (_, Outcome::Exit(code)) => Some(
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!(
                    "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                    command.join(" ")
                ),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            })
            .to_string()
            .into_bytes(),
        ),
        (_, Outcome::Error(msg)) => Some(
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {msg}"),
                "reason": "InternalError",
                "details": {"causes": [{"message": msg}]},
                "code": 500,
            })
            .to_string()
            .into_bytes(),
        ),
    }
}

/// A terminal size from the resize channel (`{"Width":80,"Height":24}`).
pub fn parse_resize(data: &[u8]) -> Option<TerminalSize> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Size {
        width: u16,
        height: u16,
    }
    let s: Size = serde_json::from_slice(data).ok()?;
    Some(TerminalSize { width: s.width, height: s.height })
}

/// The process side of a session.
pub struct Streams {
    /// Where stdin goes; `None` when the client did not ask for it (or there is none).
    pub stdin: Option<mpsc::Sender<Bytes>>,
    /// Terminal resizes, with a terminal.
    pub resize: Option<mpsc::Sender<TerminalSize>>,
    /// Output as `(channel, bytes)`; ends when every output stream is finished.
    pub output: mpsc::Receiver<(u8, Bytes)>,
    /// The outcome, once the process ended.
    pub outcome: oneshot::Receiver<Outcome>,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The outcome was sent and the WebSocket closed.
    Finished(Outcome),
    /// The client went away first.
    ClientGone,
}

/// Runs one exec/attach session over `ws`. `first_channel` gets an empty message right away, as the kubelet
/// tells the client the streams are ready.
pub async fn drive<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    command: &[String],
    first_channel: u8,
    mut streams: Streams,
) -> Ended
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = ws.split();
    if sink.send(Message::Binary(Bytes::from(vec![first_channel]))).await.is_err() {
        return Ended::ClientGone;
    }
    let mut output_open = true;
    loop {
        tokio::select! {
            msg = incoming.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    let Some((&channel, rest)) = data.split_first() else { continue };
                    match channel {
                        STDIN => {
                            if let Some(tx) = &streams.stdin {
                                if !rest.is_empty() && tx.send(Bytes::copy_from_slice(rest)).await.is_err() {
                                    streams.stdin = None;
                                }
                            }
                        }
                        RESIZE => {
                            if let (Some(tx), Some(size)) = (&streams.resize, parse_resize(rest)) {
                                let _ = tx.send(size).await;
                            }
                        }
                        CLOSE if protocol == Protocol::V5 && rest.first() == Some(&STDIN) => streams.stdin = None,
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ended::ClientGone,
                // Pings are answered by the WebSocket layer; text messages (base64 protocols) are not served.
                Some(Ok(_)) => {}
            },
            out = streams.output.recv(), if output_open => match out {
                Some((channel, data)) => {
                    let mut msg = Vec::with_capacity(data.len() + 1);
                    msg.push(channel);
                    msg.extend_from_slice(&data);
                    if sink.send(Message::Binary(Bytes::from(msg))).await.is_err() {
                        return Ended::ClientGone;
                    }
                }
                None => output_open = false,
            },
            outcome = &mut streams.outcome, if !output_open => {
                let outcome = outcome.unwrap_or_else(|_| Outcome::Error("the process runner went away".into()));
                if let Some(msg) = error_channel_message(protocol, command, &outcome) {
                    let mut frame = vec![ERROR];
                    frame.extend_from_slice(&msg);
                    let _ = sink.send(Message::Binary(Bytes::from(frame))).await;
                }
                let close = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                let _ = sink.send(Message::Close(Some(close))).await;
                // Let the client's close answer arrive (and the pending close go out) before dropping the socket.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                    while let Some(Ok(_)) = incoming.next().await {}
                })
                .await;
                return Ended::Finished(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_become_kubectls_status() {
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let v: serde_json::Value =
            serde_json::from_slice(&error_channel_message(Protocol::V5, &cmd, &Outcome::Exit(3)).unwrap()).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0], json!({"reason": "ExitCode", "message": "3"}));
        let ok: serde_json::Value =
            serde_json::from_slice(&error_channel_message(Protocol::V4, &cmd, &Outcome::Success).unwrap()).unwrap();
        assert_eq!(ok, json!({"metadata": {}, "status": "Success"}));
        assert_eq!(error_channel_message(Protocol::V1, &cmd, &Outcome::Success), None);
        let err: serde_json::Value =
            serde_json::from_slice(&error_channel_message(Protocol::V5, &cmd, &Outcome::Error("boom".into())).unwrap())
                .unwrap();
        assert_eq!((err["reason"].as_str(), err["code"].as_i64()), (Some("InternalError"), Some(500)));
    }

    #[test]
    fn resize_messages() {
        assert_eq!(parse_resize(b"{\"Width\":120,\"Height\":40}\n"), Some(TerminalSize { width: 120, height: 40 }));
        assert_eq!(parse_resize(b"nope"), None);
        assert_eq!(Protocol::from_name("v5.channel.k8s.io"), Some(Protocol::V5));
        assert_eq!(Protocol::from_name("base64.channel.k8s.io"), None);
    }
}
