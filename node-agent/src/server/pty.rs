//! Pseudo-terminals for `exec -t`: a pty pair, the child-side setup (new session, the pty as controlling
//! terminal, run in the forked child before exec) and async reads and writes on the master.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use tokio::io::unix::AsyncFd;

use super::runtime::TerminalSize;

/// A pty pair.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a pty pair.
pub fn open() -> std::io::Result<Pty> {
    let r = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
    Ok(Pty { master: r.master, slave: r.slave })
}

/// Sets the terminal size of a pty (through either side).
pub fn set_size(fd: &impl AsRawFd, size: TerminalSize) -> std::io::Result<()> {
    let ws = nix::libc::winsize { ws_row: size.height, ws_col: size.width, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize struct that lives for the call.
    let rc = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCSWINSZ, &ws) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the child a session leader with stdin (the pty slave) as its controlling terminal.
///
/// # Safety
/// Only for `pre_exec`: it makes async-signal-safe system calls only.
pub unsafe fn become_terminal_session_leader() -> std::io::Result<()> {
    // SAFETY: setsid and ioctl(TIOCSCTTY) take no pointers.
    unsafe {
        if nix::libc::setsid() < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if nix::libc::ioctl(0, nix::libc::TIOCSCTTY as _, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The master side, for concurrent async reading and writing.
#[derive(Clone)]
pub struct Master {
    fd: Arc<AsyncFd<OwnedFd>>,
}

impl Master {
    /// Wraps the master (made non-blocking).
    pub fn new(fd: OwnedFd) -> std::io::Result<Master> {
        // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
        unsafe {
            let flags = nix::libc::fcntl(fd.as_raw_fd(), nix::libc::F_GETFL);
            if flags < 0 || nix::libc::fcntl(fd.as_raw_fd(), nix::libc::F_SETFL, flags | nix::libc::O_NONBLOCK) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        // SAFETY: the OwnedFd is moved into the AsyncFd and stays open, unchanged, for its whole life.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Master { fd: Arc::new(fd) })
    }

    /// Reads output; `Ok(0)` once every holder of the slave side is gone (the kernel's EIO).
    pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            let r = guard.try_io(|fd| {
                // SAFETY: reads into a buffer we own, at most its length.
                let n = unsafe { nix::libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => return Ok(0),
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes all of `data` (what the user types).
    pub async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let mut guard = self.fd.writable().await?;
            let r = guard.try_io(|fd| {
                // SAFETY: writes from a buffer we own, at most its length.
                let n = unsafe { nix::libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            match r {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    pub fn set_size(&self, size: TerminalSize) -> std::io::Result<()> {
        set_size(self.fd.get_ref(), size)
    }
}
