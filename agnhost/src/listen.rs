//! Listening sockets the way Go's `net.Listen(":PORT")` makes them: one dual-stack socket on `[::]` (IPv4
//! clients show as plain IPv4 addresses), or `0.0.0.0` where the namespace has no IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Context;

/// A TCP listener on every address of the namespace, port `port`.
pub async fn tcp(port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)).await {
        Ok(l) => Ok(l),
        Err(_) => tokio::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
            .await
            .with_context(|| format!("listen tcp :{port}")),
    }
}

/// A UDP socket on `address` (empty: every address of the namespace), port `port`.
pub async fn udp(address: &str, port: u16) -> anyhow::Result<tokio::net::UdpSocket> {
    if !address.is_empty() {
        let ip: IpAddr = address.parse().with_context(|| format!("parseAddress: invalid address {address}"))?;
        return tokio::net::UdpSocket::bind(SocketAddr::new(ip, port))
            .await
            .with_context(|| format!("failed to create listener for UDP address {address}:{port}"));
    }
    match tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)).await {
        Ok(s) => Ok(s),
        Err(_) => tokio::net::UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))
            .await
            .with_context(|| format!("failed to create listener for UDP address :{port}")),
    }
}

/// `addr` with an IPv4-mapped IPv6 address shown as IPv4, as Go shows a client of a dual-stack socket.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Installs the SIGTERM handler now (so a SIGTERM from then on is never lost); `recv` waits for one.
pub fn sigterm() -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("installing the SIGTERM handler")
}
