//! The ReplicaSet and ReplicationController controllers: keep the number of pods a ReplicaSet/RC asks for (upstream pkg/controller/replicaset, replication).

use crate::context::Context;

/// Runs the controller until the process ends.
pub async fn run(_ctx: Context) -> Result<(), crate::NotImplemented> {
    Err(crate::NotImplemented("replicaset"))
}
