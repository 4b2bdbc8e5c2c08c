//! The API server's side of the kubelet API: `pods/log`, `pods/exec`, `pods/attach` and `pods/portforward`
//! checked as kube-apiserver checks them ([`location`]) and proxied to the pod's node ([`client`] connects with
//! the kubelet-client certificate; [`proxy`] passes upgrades through — the handshake, then bytes both ways — and
//! streams logs).

pub mod client;
pub mod location;
pub mod proxy;

pub use client::{KubeletClient, KubeletError};
