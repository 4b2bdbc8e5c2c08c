//! netexec's UDP server: `hostname`, `echo MSG` and `clientip` (case-insensitive, as upstream lowercases the
//! whole datagram — so the echo comes back lowercased too).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::State;
use crate::{listen, log};

/// The addresses to listen on: `""` (every address) when none are given, else each given IP once, sorted.
pub fn listen_addresses(list: &str) -> anyhow::Result<Vec<String>> {
    if list.is_empty() {
        return Ok(vec![String::new()]);
    }
    let mut out = std::collections::BTreeSet::new();
    for address in list.split(',') {
        if address.parse::<std::net::IpAddr>().is_err() {
            anyhow::bail!("parseAddress: invalid address {address}");
        }
        out.insert(address.to_string());
    }
    Ok(out.into_iter().collect())
}

/// The answer to one datagram, `None` for unknown commands.
pub fn answer(datagram: &[u8], client: std::net::SocketAddr, hostname: impl FnOnce() -> String) -> Option<String> {
    let text = String::from_utf8_lossy(datagram).trim().to_lowercase();
    if text == "hostname" {
        Some(hostname())
    } else if let Some(msg) = text.strip_prefix("echo ") {
        Some(msg.to_string())
    } else if text == "clientip" {
        Some(client.to_string())
    } else {
        None
    }
}

pub async fn serve(socket: tokio::net::UdpSocket, state: Arc<State>) {
    state.server_ready.store(true, Ordering::SeqCst);
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                state.server_ready.store(false, Ordering::SeqCst);
                log::line("UDP server exited");
                log::fatal(format!("Error occurred: failed accepting UDP connections:{e}"));
            }
        };
        let client = listen::canonical(peer);
        match answer(&buf[..n], client, log::hostname) {
            Some(reply) => {
                log::line(format!("Sending UDP answer to {client}"));
                if let Err(e) = socket.send_to(reply.as_bytes(), peer).await {
                    log::line(format!("failed to write to UDP client {client}: {e}"));
                }
            }
            None if n > 0 => log::line(format!(
                "Unknown UDP command received from {client}: {}",
                String::from_utf8_lossy(&buf[..n]).trim().to_lowercase()
            )),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let client: std::net::SocketAddr = "10.244.1.5:40000".parse().unwrap();
        assert_eq!(answer(b"hostname\n", client, || "pod-a".into()), Some("pod-a".into()));
        assert_eq!(answer(b"echo Hello\n", client, || unreachable!()), Some("hello".into()));
        assert_eq!(answer(b"CLIENTIP", client, || unreachable!()), Some("10.244.1.5:40000".into()));
        assert_eq!(answer(b"what", client, || unreachable!()), None);
        assert_eq!(listen_addresses("").unwrap(), vec![String::new()]);
        assert_eq!(listen_addresses("127.0.0.2,127.0.0.1,127.0.0.2").unwrap(), vec!["127.0.0.1", "127.0.0.2"]);
        assert!(listen_addresses("nope").is_err());
    }
}
