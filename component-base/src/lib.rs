//! What every long-running knet process shares, like Kubernetes' `k8s.io/component-base`: structured logging
//! set-up (`logs`), the plain-HTTP `/healthz`, `/livez`, `/readyz` and `/metrics` server (`health`), and loading
//! the client configuration from a kubeconfig or the in-cluster environment (`kubeconfig`), and named network
//! namespaces with processes started inside one (`netns`).

pub mod health;
pub mod kubeconfig;
pub mod logs;
pub mod netns;
