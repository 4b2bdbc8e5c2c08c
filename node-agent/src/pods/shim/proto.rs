//! The attach protocol between the agent and a shim over its unix socket: frames of `kind: u8`,
//! `len: u32 (big endian)`, `payload`. A client first sends [`HELLO`] (JSON `{"stdin":bool}`); the shim answers
//! with [`INFO`] (JSON `{"tty":bool,"stdin":bool}`), then streams output and finally [`EXIT`].

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

// Client → shim.
pub const HELLO: u8 = 0;
pub const STDIN: u8 = 1;
pub const STDIN_CLOSE: u8 = 2;
/// Payload: width u16, height u16 (big endian).
pub const RESIZE: u8 = 3;
/// Payload: signal number i32 (big endian).
pub const SIGNAL: u8 = 4;
// Shim → client.
pub const INFO: u8 = 10;
pub const STDOUT: u8 = 11;
pub const STDERR: u8 = 12;
/// Payload: exit code i32 (big endian).
pub const EXIT: u8 = 13;

/// Largest payload accepted.
pub const MAX_FRAME: u32 = 1 << 20;

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(5 + payload.len());
    buf.push(kind);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes is too large")));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    Ok(Some((head[0], payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write_frame(&mut a, STDOUT, b"hello").await.unwrap();
        write_frame(&mut a, EXIT, &3i32.to_be_bytes()).await.unwrap();
        drop(a);
        assert_eq!(read_frame(&mut b).await.unwrap(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(read_frame(&mut b).await.unwrap(), Some((EXIT, vec![0, 0, 0, 3])));
        assert_eq!(read_frame(&mut b).await.unwrap(), None);
    }
}
