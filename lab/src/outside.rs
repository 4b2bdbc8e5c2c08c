//! The `outside` host's servers, standing for the internet: an HTTP server on :80 that answers every request
//! with the client's source IP (what a pod's egress looks like from outside), and a DNS server on :53 that
//! answers a few names (`example.com` …) with the outside host's address and REFUSES everything else — the
//! cluster DNS's upstream. Run as hidden `knet-lab` subcommands inside the outside host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::{rdata::A, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The names the outside DNS server answers by default.
pub const DEFAULT_NAMES: &[&str] =
    &["example.com", "www.example.com", "example.org", "www.example.org", "example.net", "outside.lab"];

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum OutsideError {
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("DNS server stopped: {0}")]
    Dns(String),
}

/// The answer to an HTTP request from `client`: the client's IP and a newline.
pub fn client_ip_response(client: SocketAddr) -> String {
    let body = format!("{}\n", client.ip().to_canonical());
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Serves HTTP on `listen` until the process ends.
pub async fn serve_http(listen: SocketAddr) -> Result<(), OutsideError> {
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| OutsideError::Listen { addr: listen, source })?;
    tracing::info!(%listen, "client-IP HTTP server listening");
    loop {
        let Ok((mut conn, client)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            // Read the request head (bounded), then answer and close.
            let mut buf = vec![0u8; 8192];
            let mut read = 0;
            let deadline = tokio::time::sleep(Duration::from_secs(5));
            tokio::pin!(deadline);
            while read < buf.len() {
                tokio::select! {
                    n = conn.read(&mut buf[read..]) => match n {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    },
                    _ = &mut deadline => return,
                }
                if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            tracing::info!(%client, "HTTP request");
            let _ = conn.write_all(client_ip_response(client).as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// What the DNS server does with one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsDecision {
    /// An A record with this address.
    Answer(Ipv4Addr),
    /// The name is known but has no record of that type (NOERROR, no answers).
    NoData,
    /// Not a name this server answers.
    Refused,
}

/// Decides the answer for `name` (any case, with or without the final dot) and `qtype`.
pub fn decide(names: &[String], address: Ipv4Addr, name: &str, qtype: RecordType) -> DnsDecision {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if !names.iter().any(|n| n.trim_end_matches('.').eq_ignore_ascii_case(&name)) {
        return DnsDecision::Refused;
    }
    match qtype {
        RecordType::A | RecordType::ANY => DnsDecision::Answer(address),
        _ => DnsDecision::NoData,
    }
}

struct Handler {
    names: Vec<String>,
    address: Ipv4Addr,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = false;
        let query = request.queries.queries().first();
        let decision = match query {
            Some(q) => decide(&self.names, self.address, &q.name().to_string(), q.query_type()),
            None => DnsDecision::Refused,
        };
        tracing::info!(client = %request.src(), query = ?query.map(|q| q.name().to_string()), ?decision, "DNS query");
        let result = match (&decision, query) {
            (DnsDecision::Answer(ip), Some(q)) => {
                let ip = *ip;
                let record = Record::from_rdata(q.original().name().clone(), 60, RData::A(A(ip)));
                let answers = [record];
                response.send_response(builder.build(metadata, answers.iter(), [], [], [])).await
            }
            (DnsDecision::NoData, _) => response.send_response(builder.build_no_records(metadata)).await,
            _ => response.send_response(builder.error_msg(&request.metadata, ResponseCode::Refused)).await,
        };
        match result {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %e, "sending a DNS answer");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                hickory_proto::op::Header { metadata: failed, counts: Default::default() }.into()
            }
        }
    }
}

/// Serves DNS over UDP and TCP on `listen` until the process ends.
pub async fn serve_dns(listen: SocketAddr, names: Vec<String>, address: Ipv4Addr) -> Result<(), OutsideError> {
    let udp =
        tokio::net::UdpSocket::bind(listen).await.map_err(|source| OutsideError::Listen { addr: listen, source })?;
    let tcp =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| OutsideError::Listen { addr: listen, source })?;
    let mut server = hickory_server::Server::new(Handler { names: names.clone(), address });
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 65_535);
    tracing::info!(%listen, ?names, %address, "DNS server listening");
    server.block_until_done().await.map_err(|e| OutsideError::Dns(e.to_string()))
}

/// The outside host's address as an IPv4 address (DNS answers are A records).
pub fn ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_known_names_and_refuses_others() {
        let names: Vec<String> = DEFAULT_NAMES.iter().map(|s| s.to_string()).collect();
        let ip: Ipv4Addr = "192.168.56.200".parse().unwrap();
        assert_eq!(decide(&names, ip, "example.com.", RecordType::A), DnsDecision::Answer(ip));
        assert_eq!(decide(&names, ip, "WWW.Example.COM", RecordType::A), DnsDecision::Answer(ip));
        assert_eq!(decide(&names, ip, "example.com.", RecordType::AAAA), DnsDecision::NoData);
        assert_eq!(decide(&names, ip, "kubernetes.io.", RecordType::A), DnsDecision::Refused);
        assert_eq!(decide(&names, ip, "sub.example.com.", RecordType::A), DnsDecision::Refused);
    }

    #[test]
    fn http_answer_is_the_client_ip() {
        let r = client_ip_response("10.244.1.5:40000".parse().unwrap());
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(r.ends_with("\r\n\r\n10.244.1.5\n"));
        assert!(r.contains("Content-Length: 11\r\n"));
        let mapped = client_ip_response("[::ffff:192.168.56.11]:1".parse().unwrap());
        assert!(mapped.ends_with("\n192.168.56.11\n"));
    }
}
