//! What every long-running knet process shares, like Kubernetes' `k8s.io/component-base`: the Event recorder
//! (`events`, client-go's `tools/record` and `tools/events`), structured logging set-up (`logs`), the plain-HTTP
//! `/healthz`, `/livez`, `/readyz` and `/metrics` server (`health`) and the metrics registry it renders
//! (`metrics`), loading the client configuration from a kubeconfig or the in-cluster environment
//! (`kubeconfig`), and named network namespaces with processes started inside one (`netns`).

pub mod events;
pub mod health;
pub mod kubeconfig;
pub mod logs;
pub mod metrics;
pub mod netns;
