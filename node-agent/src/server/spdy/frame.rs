//! SPDY/3.1 frames as the Kubernetes streaming clients (moby/spdystream) send them: the 8-byte frame head, the
//! control frames kubectl's port-forward and exec use (SYN_STREAM, SYN_REPLY, RST_STREAM, PING, GOAWAY, HEADERS),
//! data frames, and the zlib-compressed header blocks (one compression context per direction and connection,
//! primed with the SPDY dictionary, each block ending in a sync flush). Settings and window updates are read and
//! ignored: spdystream does no flow control.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::dictionary::dictionary;

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// FLAG_FIN on control and data frames.
pub const FLAG_FIN: u8 = 0x01;
/// The largest frame payload knet accepts (the length field allows 16 MiB; clients send at most 32 KiB).
pub const MAX_FRAME: usize = 1 << 20;
/// The largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;

/// RST_STREAM status: the stream is refused or cancelled.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_CANCEL: u32 = 5;

/// Header name/value pairs of a stream (names lower-case; a value with several parts is split on NUL).
pub type Headers = Vec<(String, String)>;

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A frame knet reads and ignores (SETTINGS, WINDOW_UPDATE, NOOP, CREDENTIAL, unknown types).
    Ignored {
        kind: u16,
    },
}

/// A broken SPDY stream of frames.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("reading a SPDY frame: {0}")]
    Io(#[from] std::io::Error),
    #[error("SPDY frame of {0} bytes is larger than the {MAX_FRAME} bytes accepted")]
    TooLarge(usize),
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    #[error("malformed SPDY {what} frame")]
    Malformed { what: &'static str },
    #[error("decompressing SPDY headers: {0}")]
    Decompress(String),
    #[error("compressing SPDY headers: {0}")]
    Compress(String),
}

/// The receiving side's header decompression context.
pub struct HeaderDecoder {
    inflate: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        HeaderDecoder { inflate: Decompress::new(true) }
    }
}

impl HeaderDecoder {
    /// Decompresses one header block (continuing the connection's zlib stream) and parses the pairs.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let raw = self.inflate(block)?;
        parse_header_block(&raw)
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 256);
        let mut pos = 0usize;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(4096);
            }
            let before = self.inflate.total_in();
            let spare_before = out.capacity() - out.len();
            let result = self.inflate.decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.inflate.total_in() - before) as usize;
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {
                    let filled = spare_before - (out.capacity() - out.len());
                    if pos >= input.len() && filled < spare_before {
                        break;
                    }
                    if pos >= input.len() && filled == 0 {
                        break;
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate.set_dictionary(dictionary()).map_err(|e| FrameError::Decompress(e.to_string()))?;
                }
                Err(e) => return Err(FrameError::Decompress(e.to_string())),
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(FrameError::Decompress(format!("header block larger than {MAX_HEADER_BLOCK} bytes")));
            }
        }
        Ok(out)
    }
}

/// The sending side's header compression context.
pub struct HeaderEncoder {
    deflate: Compress,
    primed: bool,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        HeaderEncoder { deflate: Compress::new(Compression::default(), true), primed: false }
    }
}

impl HeaderEncoder {
    /// Compresses one header block, ending it with a sync flush so the peer can decode it alone.
    pub fn encode(&mut self, headers: &Headers) -> Result<Vec<u8>, FrameError> {
        if !self.primed {
            self.deflate.set_dictionary(dictionary()).map_err(|e| FrameError::Compress(e.to_string()))?;
            self.primed = true;
        }
        let raw = header_block(headers);
        let mut out: Vec<u8> = Vec::with_capacity(raw.len() + 64);
        let mut pos = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(1024);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(&raw[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::Compress(e.to_string()))?;
            pos += (self.deflate.total_in() - before) as usize;
            // A sync flush is complete when all input is in and the output buffer was not filled up.
            if pos >= raw.len() && out.capacity() - out.len() >= 64 {
                break;
            }
        }
        Ok(out)
    }
}

/// The uncompressed header block: pair count, then each name and value with a 32-bit length.
pub fn header_block(headers: &Headers) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.to_ascii_lowercase().as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn parse_header_block(raw: &[u8]) -> Result<Headers, FrameError> {
    let bad = || FrameError::Malformed { what: "header block" };
    let mut cur = raw;
    let mut take = |n: usize| -> Result<&[u8], FrameError> {
        if cur.len() < n {
            return Err(bad());
        }
        let (head, rest) = cur.split_at(n);
        cur = rest;
        Ok(head)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        let name = String::from_utf8_lossy(take(n)?).to_ascii_lowercase();
        let n = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        let value = take(n)?;
        for part in value.split(|b| *b == 0) {
            headers.push((name.clone(), String::from_utf8_lossy(part).into_owned()));
        }
    }
    Ok(headers)
}

/// The first value of header `name` (lower-case).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn be32(b: &[u8], at: usize) -> Result<u32, FrameError> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(FrameError::Malformed { what: "control" })
}

/// Reads one frame; `None` at a clean end of the stream (before a frame starts).
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    decoder: &mut HeaderDecoder,
) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        let n = r.read(&mut head[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        got += n;
    }
    let flags = head[4];
    let len = (u32::from_be_bytes([0, head[5], head[6], head[7]])) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    decode_frame(head, flags, payload, decoder).map(Some)
}

fn decode_frame(head: [u8; 8], flags: u8, payload: Vec<u8>, decoder: &mut HeaderDecoder) -> Result<Frame, FrameError> {
    let fin = flags & FLAG_FIN != 0;
    if head[0] & 0x80 == 0 {
        let stream_id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
        return Ok(Frame::Data { stream_id, fin, data: Bytes::from(payload) });
    }
    let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
    if version != VERSION {
        return Err(FrameError::Version(version));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let p = &payload;
    Ok(match kind {
        SYN_STREAM => {
            let stream_id = be32(p, 0)? & 0x7fff_ffff;
            let headers = decoder.decode(p.get(10..).ok_or(FrameError::Malformed { what: "SYN_STREAM" })?)?;
            Frame::SynStream { stream_id, fin, headers }
        }
        SYN_REPLY => {
            let stream_id = be32(p, 0)? & 0x7fff_ffff;
            let headers = decoder.decode(p.get(4..).ok_or(FrameError::Malformed { what: "SYN_REPLY" })?)?;
            Frame::SynReply { stream_id, fin, headers }
        }
        HEADERS => {
            let stream_id = be32(p, 0)? & 0x7fff_ffff;
            let headers = decoder.decode(p.get(4..).ok_or(FrameError::Malformed { what: "HEADERS" })?)?;
            Frame::Headers { stream_id, fin, headers }
        }
        RST_STREAM => Frame::RstStream { stream_id: be32(p, 0)? & 0x7fff_ffff, status: be32(p, 4)? },
        PING => Frame::Ping { id: be32(p, 0)? },
        GOAWAY => Frame::GoAway { last_good_stream_id: be32(p, 0)? & 0x7fff_ffff, status: be32(p, 4).unwrap_or(0) },
        other => Frame::Ignored { kind: other },
    })
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    let len = payload.len() as u32;
    out.push(flags);
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    out
}

/// Encodes a frame (compressing header blocks with `encoder`).
pub fn encode_frame(frame: &Frame, encoder: &mut HeaderEncoder) -> Result<Vec<u8>, FrameError> {
    let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
    Ok(match frame {
        Frame::SynStream { stream_id, fin, headers } => {
            let mut p = Vec::new();
            p.extend_from_slice(&stream_id.to_be_bytes());
            p.extend_from_slice(&0u32.to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend_from_slice(&encoder.encode(headers)?);
            control(SYN_STREAM, fin_flag(*fin), &p)
        }
        Frame::SynReply { stream_id, fin, headers } | Frame::Headers { stream_id, fin, headers } => {
            let kind = if matches!(frame, Frame::SynReply { .. }) { SYN_REPLY } else { HEADERS };
            let mut p = Vec::new();
            p.extend_from_slice(&stream_id.to_be_bytes());
            p.extend_from_slice(&encoder.encode(headers)?);
            control(kind, fin_flag(*fin), &p)
        }
        Frame::RstStream { stream_id, status } => {
            let mut p = stream_id.to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(RST_STREAM, 0, &p)
        }
        Frame::Ping { id } => control(PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last_good_stream_id, status } => {
            let mut p = last_good_stream_id.to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(GOAWAY, 0, &p)
        }
        Frame::Data { stream_id, fin, data } => {
            let mut out = Vec::with_capacity(8 + data.len());
            out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
            out.push(fin_flag(*fin));
            out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(data);
            out
        }
        Frame::Ignored { .. } => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    async fn roundtrip(frames: &[Frame]) -> Vec<Frame> {
        let mut enc = HeaderEncoder::default();
        let mut wire = Vec::new();
        for f in frames {
            wire.extend(encode_frame(f, &mut enc).unwrap());
        }
        let mut dec = HeaderDecoder::default();
        let mut r = wire.as_slice();
        let mut out = Vec::new();
        while let Some(f) = read_frame(&mut r, &mut dec).await.unwrap() {
            out.push(f);
        }
        out
    }

    #[tokio::test]
    async fn frames_survive_a_roundtrip_with_one_compression_context() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynStream {
                stream_id: 3,
                fin: false,
                headers: h(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            },
            Frame::SynReply { stream_id: 3, fin: false, headers: vec![] },
            Frame::Data { stream_id: 3, fin: false, data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n") },
            Frame::Data { stream_id: 1, fin: true, data: Bytes::new() },
            Frame::Ping { id: 1 },
            Frame::RstStream { stream_id: 5, status: RST_CANCEL },
            Frame::GoAway { last_good_stream_id: 3, status: 0 },
        ];
        assert_eq!(roundtrip(&frames).await, frames);
    }

    #[test]
    fn header_values_with_nul_are_several_values_and_names_are_lowercased() {
        let raw = header_block(&h(&[("X-Multi", "a\0b")]));
        assert_eq!(parse_header_block(&raw).unwrap(), h(&[("x-multi", "a"), ("x-multi", "b")]));
        assert!(parse_header_block(&raw[..raw.len() - 1]).is_err());
    }

    #[test]
    fn settings_and_window_updates_are_ignored() {
        let mut dec = HeaderDecoder::default();
        let head = {
            let c = control(4, 0, &[0, 0, 0, 0]);
            let mut h = [0u8; 8];
            h.copy_from_slice(&c[..8]);
            h
        };
        assert_eq!(decode_frame(head, 0, vec![0; 4], &mut dec).unwrap(), Frame::Ignored { kind: 4 });
    }
}
