//! knet-controllers: knet's kube-controller-manager plus kube-scheduler. Each controller is a level-triggered
//! reconciler over shared watch caches ([`runtime`]), talking to the API server only through the
//! Kubernetes REST API, so it would run unchanged against a real cluster.

pub mod config;
pub mod context;
pub mod runtime;

pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod garbagecollector;
pub mod loadbalancer;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod rootcacert;
pub mod scheduler;
pub mod serviceaccount;

pub use config::Config;
pub use context::{Context, Informers};
