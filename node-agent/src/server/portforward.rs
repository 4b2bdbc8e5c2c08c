//! `portForward`: SPDY streams in pairs (an `error` and a `data` stream with the same `requestID` and `port`
//! headers), each pair a TCP connection to `127.0.0.1:PORT` (or `[::1]:PORT`) inside the pod's network namespace,
//! as the kubelet serves kubectl's port-forward (SPDY directly, or tunnelled through a WebSocket).
//!
//! The connection is made from a short-lived thread that joins the pod's network namespace with `setns`, so no
//! thread of the agent is left in a pod's namespace; the socket keeps its namespace after the thread ends.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::spdy::frame::{header, RST_PROTOCOL_ERROR};
use super::spdy::session::{self, Stream};

/// The stream protocol of port-forwarding.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of port-forward tunnelled through a WebSocket.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// How long the second stream of a pair may take (kubelet's stream creation timeout).
const PAIR_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to the pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The pod a session forwards into.
#[derive(Debug, Clone)]
pub struct Target {
    pub pod: String,
    pub uid: String,
    pub netns: PathBuf,
}

/// The request id pairing a stream with its partner (pseudo ids for old clients that send none, as the kubelet
/// makes them: the error stream's id, or the data stream's id minus 2).
pub fn request_id(stream: &Stream) -> String {
    match header(&stream.headers, "requestid") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => match header(&stream.headers, "streamtype") {
            Some("data") => stream.id.saturating_sub(2).to_string(),
            _ => stream.id.to_string(),
        },
    }
}

#[derive(Default)]
struct Pair {
    error: Option<Stream>,
    data: Option<Stream>,
    since: Option<tokio::time::Instant>,
}

/// Serves port-forwarding over a SPDY connection until the client goes away.
pub async fn serve<IO>(io: IO, target: Target)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel(16);
    let session = tokio::spawn(session::serve(io, tx));
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            stream = rx.recv() => {
                let Some(stream) = stream else { break };
                let id = request_id(&stream);
                let pair = pairs.entry(id.clone()).or_default();
                pair.since.get_or_insert_with(tokio::time::Instant::now);
                match header(&stream.headers, "streamtype") {
                    Some("error") if pair.error.is_none() => pair.error = Some(stream),
                    Some("data") if pair.data.is_none() => pair.data = Some(stream),
                    other => {
                        tracing::debug!(stream_type = ?other, request = %id, "port-forward: unexpected stream");
                        stream.writer.reset(RST_PROTOCOL_ERROR).await;
                        continue;
                    }
                }
                if pair.error.is_some() && pair.data.is_some() {
                    if let Some(Pair { error: Some(error), data: Some(data), .. }) = pairs.remove(&id) {
                        tokio::spawn(forward(error, data, target.clone()));
                    }
                }
            }
            _ = sweep.tick() => {
                let expired: Vec<String> = pairs
                    .iter()
                    .filter(|(_, p)| p.since.is_some_and(|s| s.elapsed() > PAIR_TIMEOUT))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in expired {
                    if let Some(pair) = pairs.remove(&id) {
                        if let Some(e) = pair.error {
                            let msg = format!("timed out waiting for the data stream of request {id}");
                            let _ = e.writer.write(msg.as_bytes()).await;
                            e.writer.close().await;
                        }
                        if let Some(d) = pair.data {
                            d.writer.reset(RST_PROTOCOL_ERROR).await;
                        }
                    }
                }
            }
        }
    }
    let _ = session.await;
}

async fn forward(error: Stream, mut data: Stream, target: Target) {
    let port = header(&data.headers, "port").and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0);
    let result = match port {
        None => Err(format!("invalid port {:?}", header(&data.headers, "port").unwrap_or_default())),
        Some(port) => connect(&target.netns, port).await.map_err(|e| e.to_string()),
    };
    match result {
        Err(e) => {
            let port = header(&data.headers, "port").unwrap_or_default();
            let msg = format!("error forwarding port {port} to pod {}, uid {}: {e}", target.pod, target.uid);
            tracing::info!(pod = %target.pod, port, error = %e, "port-forward failed");
            let _ = error.writer.write(msg.as_bytes()).await;
        }
        Ok(tcp) => {
            let (mut from_pod, mut to_pod) = tcp.into_split();
            let mut incoming = std::mem::replace(&mut data.data, mpsc::channel(1).1);
            let upload = tokio::spawn(async move {
                while let Some(chunk) = incoming.recv().await {
                    if to_pod.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                // The client finished sending: pass the half-close on.
                let _ = to_pod.shutdown().await;
            });
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match from_pod.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if data.writer.write(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            upload.abort();
        }
    }
    data.writer.close().await;
    error.writer.close().await;
}

/// Whether `path` is the network namespace this thread is already in.
fn is_current_netns(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(path), std::fs::metadata("/proc/thread-self/ns/net")) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Connects to `PORT` on the loopback of the network namespace at `netns`.
pub async fn connect(netns: &Path, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let netns = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("knet-portforward".into()).spawn(move || {
        let result = (|| {
            if !is_current_netns(&netns) {
                let file = std::fs::File::open(&netns)?;
                nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            }
            let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            std::net::TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT)
                .or_else(|e| std::net::TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|_| e))
        })();
        let _ = tx.send(result);
    })?;
    let stream = rx.await.map_err(|_| std::io::Error::other("the connecting thread died"))??;
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}
