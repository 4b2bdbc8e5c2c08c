//! `agnhost connect HOST:PORT`: tries one TCP or UDP connection and exits 0 on success, or prints an error
//! prefixed the way agnhost's callers check for (`UNKNOWN`, `TIMEOUT`, `DNS`, `REFUSED`, `OTHER`) on stderr
//! and exits 1.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Flags {
    /// The destination, `host:port`.
    dest: String,
    /// Maximum time before returning an error (Go duration; 0: none).
    #[arg(long, default_value = "0s", value_parser = crate::duration::parse)]
    timeout: Duration,
    /// The protocol to use to perform the connection, can be tcp or udp (sctp is not supported by knet).
    #[arg(long, default_value = "tcp")]
    protocol: String,
    /// The UDP payload send to the server.
    #[arg(long, default_value = "hostname")]
    udp_data: String,
}

/// Why a connection attempt failed, printed as agnhost prints it.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    Unknown(String),
    Dns(String),
    Timeout(Option<String>),
    Refused(Option<String>),
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unknown(e) => write!(f, "UNKNOWN: {e}"),
            Failure::Dns(e) => write!(f, "DNS: {e}"),
            Failure::Timeout(None) => write!(f, "TIMEOUT"),
            Failure::Timeout(Some(e)) => write!(f, "TIMEOUT: {e}"),
            Failure::Refused(None) => write!(f, "REFUSED"),
            Failure::Refused(Some(e)) => write!(f, "REFUSED: {e}"),
            Failure::Other(e) => write!(f, "OTHER: {e}"),
        }
    }
}

/// Runs the subcommand and returns the exit code.
pub fn run(flags: &Flags) -> i32 {
    let result = match flags.protocol.as_str() {
        "" | "tcp" => connect_tcp(&flags.dest, flags.timeout),
        "udp" => connect_udp(&flags.dest, flags.timeout, &flags.udp_data),
        "sctp" => Err(Failure::Other("SCTP is not supported by knet's agnhost".to_string())),
        other => {
            eprint!("Unsupported protocol\n{other}");
            return 1;
        }
    };
    match result {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("{failure}");
            1
        }
    }
}

/// Checks `dest` has Go's `host:port` shape (`[v6]:port` for IPv6).
fn split_host_port(dest: &str) -> Result<(), String> {
    let missing = || format!("address {dest}: missing port in address");
    if let Some(rest) = dest.strip_prefix('[') {
        let Some((_, after)) = rest.split_once(']') else {
            return Err(format!("address {dest}: missing ']' in address"));
        };
        return after.strip_prefix(':').map(|_| ()).ok_or_else(missing);
    }
    match dest.matches(':').count() {
        0 => Err(missing()),
        1 => Ok(()),
        _ => Err(format!("address {dest}: too many colons in address")),
    }
}

fn resolve(dest: &str) -> Result<SocketAddr, Failure> {
    let mut addrs = dest.to_socket_addrs().map_err(|e| Failure::Dns(format!("lookup {dest}: {e}")))?;
    addrs.next().ok_or_else(|| Failure::Dns(format!("lookup {dest}: no such host")))
}

fn connect_tcp(dest: &str, timeout: Duration) -> Result<(), Failure> {
    split_host_port(dest).map_err(Failure::Unknown)?;
    let addr = resolve(dest)?;
    let stream = if timeout.is_zero() { TcpStream::connect(addr) } else { TcpStream::connect_timeout(&addr, timeout) };
    match stream {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Err(Failure::Timeout(None)),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Err(Failure::Refused(None)),
        Err(e) => Err(Failure::Other(format!("dial tcp {dest}: connect: {e}"))),
    }
}

fn connect_udp(dest: &str, timeout: Duration, data: &str) -> Result<(), Failure> {
    let addr = resolve(dest)?;
    let local: SocketAddr = if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).map_err(|e| Failure::Other(e.to_string()))?;
    socket.connect(addr).map_err(|e| Failure::Other(format!("dial udp {dest}: {e}")))?;
    if !timeout.is_zero() {
        socket.set_read_timeout(Some(timeout)).map_err(|e| Failure::Other(e.to_string()))?;
        socket.set_write_timeout(Some(timeout)).map_err(|e| Failure::Other(e.to_string()))?;
    }
    let udp_error = |e: std::io::Error, op: &str| {
        let text = format!("{op} udp {dest}: {e}");
        match e.kind() {
            ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                Failure::Timeout(Some(format!("{op} udp {dest}: i/o timeout")))
            }
            ErrorKind::ConnectionRefused => Failure::Refused(Some(text)),
            _ => Failure::Unknown(text),
        }
    };
    socket.send(format!("{data}\n").as_bytes()).map_err(|e| udp_error(e, "write"))?;
    let mut buf = [0u8; 1024];
    let read = socket.recv(&mut buf).map_err(|e| udp_error(e, "read"))?;
    if read == 0 {
        return Err(Failure::Other(
            "No data received from the server. Cannot guarantee the server received the request.".to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_shapes() {
        assert!(split_host_port("10.0.0.1:80").is_ok());
        assert!(split_host_port("[::1]:80").is_ok());
        assert_eq!(split_host_port("10.0.0.1"), Err("address 10.0.0.1: missing port in address".to_string()));
        assert_eq!(split_host_port("::1:80"), Err("address ::1:80: too many colons in address".to_string()));
        assert_eq!(Failure::Unknown("x".into()).to_string(), "UNKNOWN: x");
        assert_eq!(Failure::Timeout(None).to_string(), "TIMEOUT");
        assert_eq!(Failure::Refused(None).to_string(), "REFUSED");
    }
}
