//! SPDY/3.1, the stream multiplexing Kubernetes' streaming clients fall back to (and that port-forward tunnels
//! through a WebSocket): frames and header compression ([`frame`]), the header dictionary ([`dictionary`]) and
//! the server side of a session ([`session`]).

pub mod dictionary;
pub mod frame;
pub mod session;
