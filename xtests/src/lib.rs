//! knet's integration test harness: start knet components from a test, drive them with the real kubectl and
//! kube-rs, and tear everything down on drop (later issues extend it to whole labs).
//!
//! - [`ApiServer`]: a `knet-apiserver` process on a fresh data directory and a free 127.0.0.1 port.
//! - [`kubectl()`]/[`Kubectl`]: the real kubectl v1.34 against it.
//! - [`Controllers`]: a `knet-controllers` process against an [`ApiServer`].
//! - [`FakeNode`]: a Node whose "agent" is a task in the test, reporting pods Running/Ready through the API.
//! - [`wait::until`]: poll a condition with a deadline and a useful failure message.
//!
//! Binaries are taken from the test executable's `target/<profile>/` directory (or `$KNET_BIN_DIR`), so
//! build them before the tests: `scripts/test.sh` does.

pub mod apiserver;
pub mod controllers;
pub mod e2e;
pub mod fake_node;
pub mod kubectl;
pub mod lab;
pub mod node_host;
mod process;
pub mod wait;

pub use apiserver::ApiServer;
pub use controllers::{Controllers, WaitFor};
pub use fake_node::{FakeNode, FakeNodeOptions};
pub use kubectl::{kubectl, Kubectl, KubectlOutput, KubectlProcess};

impl ApiServer {
    /// A kubectl for this server's admin kubeconfig.
    pub fn kubectl(&self) -> Kubectl {
        kubectl(self)
    }
}
