//! A WebSocket as a plain byte stream, for protocols tunnelled through one (SPDY in port-forward): the binary
//! messages the peer sends are read as one stream of bytes, and what is written goes out as binary messages.
//! The WebSocket closes normally when the byte stream is shut down.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const BUFFER: usize = 256 * 1024;

/// Turns `ws` into a byte stream; two tasks carry bytes between them until either side ends.
pub fn byte_stream<S>(ws: WebSocketStream<S>) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(BUFFER);
    let (mut from_local, mut to_local) = tokio::io::split(theirs);
    let (mut sink, mut incoming) = ws.split();
    let (closed_tx, mut closed_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        while let Some(msg) = incoming.next().await {
            match msg {
                Ok(Message::Binary(data)) => {
                    if to_local.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = to_local.shutdown().await;
        let _ = closed_tx.send(());
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            tokio::select! {
                n = from_local.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if sink.send(Message::Binary(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                            return;
                        }
                    }
                },
                _ = &mut closed_rx => break,
            }
        }
        let close = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        let _ = sink.send(Message::Close(Some(close))).await;
        let _ = sink.close().await;
    });
    ours
}
