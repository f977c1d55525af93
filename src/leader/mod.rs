//! Leader election for several replicas on one Kubernetes API server: one
//! replica at a time runs the controllers and the provisioner's operations,
//! elected with a `coordination.k8s.io/v1` Lease the way client-go's
//! leaderelection does it (`election`), over a small Lease record API
//! (`lease`). Every replica serves OSB, the resource API and the ingress;
//! a follower records OSB operations in the store and the leader runs them.

mod election;
mod lease;

pub use election::run_elected;
