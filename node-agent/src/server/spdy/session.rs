//! The server side of a SPDY session, as the kubelet's streaming server runs it: the client opens streams (each
//! answered with an empty SYN_REPLY at once), data frames go to the stream they name, client PINGs are echoed,
//! FIN half-closes a stream. What each stream is for is the caller's business: new streams arrive on a channel.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::frame::{encode_frame, read_frame, Frame, FrameError, HeaderDecoder, HeaderEncoder, Headers};

/// The most bytes one data frame carries.
const MAX_DATA_FRAME: usize = 32 * 1024;
/// Frames queued for the writer.
const OUT_QUEUE: usize = 64;
/// Data chunks queued per stream before the session stops reading.
const STREAM_QUEUE: usize = 16;

/// A stream the client opened.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    /// What the client sends on the stream; ends when the client half-closes (FIN) or resets it.
    pub data: mpsc::Receiver<Bytes>,
    pub writer: StreamWriter,
}

/// Writes to one stream.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Frame>,
}

/// The session is gone.
#[derive(Debug, thiserror::Error)]
#[error("the SPDY connection is closed")]
pub struct Closed;

impl StreamWriter {
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Sends `data` on the stream, in frames of at most 32 KiB.
    pub async fn write(&self, data: &[u8]) -> Result<(), Closed> {
        for chunk in data.chunks(MAX_DATA_FRAME) {
            let frame = Frame::Data { stream_id: self.id, fin: false, data: Bytes::copy_from_slice(chunk) };
            self.out.send(frame).await.map_err(|_| Closed)?;
        }
        Ok(())
    }

    /// Half-closes the stream (an empty data frame with FIN).
    pub async fn close(&self) {
        let _ = self.out.send(Frame::Data { stream_id: self.id, fin: true, data: Bytes::new() }).await;
    }

    /// Resets the stream.
    pub async fn reset(&self, status: u32) {
        let _ = self.out.send(Frame::RstStream { stream_id: self.id, status }).await;
    }
}

/// Runs the session over `io` until the client goes away, handing every stream the client opens to `streams`.
pub async fn serve<IO>(io: IO, streams: mpsc::Sender<Stream>) -> Result<(), FrameError>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::channel::<Frame>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        let mut encoder = HeaderEncoder::default();
        while let Some(frame) = out_rx.recv().await {
            let bytes = encode_frame(&frame, &mut encoder)?;
            wr.write_all(&bytes).await?;
            if out_rx.is_empty() {
                wr.flush().await?;
            }
        }
        let _ = wr.shutdown().await;
        Ok::<(), FrameError>(())
    });

    let mut decoder = HeaderDecoder::default();
    let mut open: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut last_id = 0u32;
    let mut going_away = false;
    let result = loop {
        let frame = match read_frame(&mut rd, &mut decoder).await {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        match frame {
            Frame::SynStream { stream_id, fin, headers } => {
                // Client streams have odd, increasing ids.
                if stream_id % 2 == 0 || stream_id <= last_id || going_away {
                    let _ = out_tx.send(Frame::RstStream { stream_id, status: super::frame::RST_PROTOCOL_ERROR }).await;
                    continue;
                }
                last_id = stream_id;
                if out_tx.send(Frame::SynReply { stream_id, fin: false, headers: Vec::new() }).await.is_err() {
                    break Ok(());
                }
                let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                if !fin {
                    open.insert(stream_id, tx);
                }
                let stream = Stream {
                    id: stream_id,
                    headers,
                    data: rx,
                    writer: StreamWriter { id: stream_id, out: out_tx.clone() },
                };
                if streams.send(stream).await.is_err() {
                    let _ = out_tx.send(Frame::RstStream { stream_id, status: super::frame::RST_CANCEL }).await;
                }
            }
            Frame::Data { stream_id, fin, data } => {
                if let Some(tx) = open.get(&stream_id) {
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        // Nobody reads the stream any more: drop what it sends.
                        open.remove(&stream_id);
                    }
                }
                if fin {
                    open.remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, .. } => {
                open.remove(&stream_id);
            }
            Frame::Ping { id } => {
                // Echo the client's pings (odd ids); ours would be even, and knet sends none.
                if id % 2 == 1 {
                    let _ = out_tx.send(Frame::Ping { id }).await;
                }
            }
            Frame::GoAway { .. } => going_away = true,
            Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Ignored { .. } => {}
        }
    };
    drop(open);
    drop(streams);
    drop(out_tx);
    // The writer ends once every stream writer is dropped.
    match writer.await {
        Ok(Err(e)) if result.is_ok() => Err(e),
        _ => result,
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{header, read_frame, HeaderDecoder};
    use super::*;

    #[tokio::test]
    async fn replies_to_streams_routes_data_and_echoes_pings() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (tx, mut rx) = mpsc::channel(4);
        let session = tokio::spawn(serve(server, tx));
        let (mut crd, mut cwr) = tokio::io::split(client);
        let mut enc = HeaderEncoder::default();
        let mut send = |f: Frame| encode_frame(&f, &mut enc).unwrap();
        let h = vec![("streamtype".to_string(), "data".to_string())];
        cwr.write_all(&send(Frame::SynStream { stream_id: 1, fin: false, headers: h })).await.unwrap();
        cwr.write_all(&send(Frame::Data { stream_id: 1, fin: true, data: Bytes::from_static(b"hi") })).await.unwrap();
        cwr.write_all(&send(Frame::Ping { id: 7 })).await.unwrap();

        let mut stream = rx.recv().await.unwrap();
        assert_eq!(header(&stream.headers, "streamType"), Some("data"));
        assert_eq!(stream.data.recv().await.unwrap(), Bytes::from_static(b"hi"));
        assert!(stream.data.recv().await.is_none(), "FIN ends the stream's data");
        stream.writer.write(b"back").await.unwrap();
        stream.writer.close().await;

        let mut dec = HeaderDecoder::default();
        let mut seen = Vec::new();
        while seen.len() < 4 {
            seen.push(read_frame(&mut crd, &mut dec).await.unwrap().unwrap());
        }
        assert_eq!(seen[0], Frame::SynReply { stream_id: 1, fin: false, headers: vec![] });
        assert!(seen.contains(&Frame::Ping { id: 7 }));
        assert!(seen.contains(&Frame::Data { stream_id: 1, fin: false, data: Bytes::from_static(b"back") }));
        assert!(seen.contains(&Frame::Data { stream_id: 1, fin: true, data: Bytes::new() }));
        drop(stream);
        drop(cwr);
        drop(crd);
        session.await.unwrap().unwrap();
    }
}
