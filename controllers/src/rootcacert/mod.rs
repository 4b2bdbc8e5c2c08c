//! The root-ca-cert-publisher controller (upstream pkg/controller/certificates/rootcacertpublisher): every
//! active namespace has the ConfigMap `kube-root-ca.crt` whose `ca.crt` is the cluster CA, so pods can trust
//! the API server; a changed or deleted one is repaired. The CA comes from `--root-ca-file`, else the
//! kubeconfig's.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::context::{Context, ROOT_CA_CONFIGMAP};
use crate::runtime::{enqueue_changes, resync, run_workers, Action, Reconciler, Store, WorkQueue};
use crate::serviceaccount::active;

/// The key of the CA in the ConfigMap.
pub const CA_KEY: &str = "ca.crt";
/// The annotation upstream puts on the ConfigMap.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal \
endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions \
of Kubernetes clusters.";
const WORKERS: usize = 2;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum RootCaError {
    #[error("reading the root CA: {0}")]
    Ca(String),
    #[error("writing {ROOT_CA_CONFIGMAP} in namespace {namespace}: {source}")]
    Write { namespace: String, source: kube::Error },
    #[error("the root-ca-cert-publisher's work queue stopped")]
    Stopped,
}

/// What to do about one namespace's ConfigMap.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    None,
    Create(ConfigMap),
    /// Replace the existing one (same metadata) with these data.
    Update(ConfigMap),
}

/// Decides the change for `namespace` (pure).
pub fn decide(ns: &Namespace, existing: Option<&ConfigMap>, ca: &str) -> Change {
    if !active(ns) {
        return Change::None;
    }
    let data = BTreeMap::from([(CA_KEY.to_string(), ca.to_string())]);
    match existing {
        None => Change::Create(ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(ROOT_CA_CONFIGMAP.into()),
                namespace: ns.metadata.name.clone(),
                annotations: Some(BTreeMap::from([(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string())])),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        }),
        Some(cm) if cm.data.as_ref() == Some(&data) && cm.binary_data.as_ref().is_none_or(|b| b.is_empty()) => {
            Change::None
        }
        Some(cm) => {
            let mut cm = cm.clone();
            cm.data = Some(data);
            cm.binary_data = None;
            cm.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
            Change::Update(cm)
        }
    }
}

/// PEM of DER certificates.
pub fn pem(ders: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for der in ders {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

async fn root_ca(ctx: &Context) -> Result<String, RootCaError> {
    if let Some(path) = &ctx.config.root_ca_file {
        return std::fs::read_to_string(path).map_err(|e| RootCaError::Ca(format!("{}: {e}", path.display())));
    }
    let config = knet_component_base::kubeconfig::load(ctx.config.kubeconfig.as_deref())
        .await
        .map_err(|e| RootCaError::Ca(e.to_string()))?;
    match config.root_cert {
        Some(certs) if !certs.is_empty() => Ok(pem(&certs)),
        _ => Err(RootCaError::Ca("the kubeconfig has no CA; give --root-ca-file".into())),
    }
}

/// Runs the controller until the process ends.
pub async fn run(ctx: Context) -> Result<(), RootCaError> {
    let ca = root_ca(&ctx).await?;
    let queue: WorkQueue<String> = WorkQueue::new();
    let namespaces = ctx.informers.namespaces.clone();
    let maps = ctx.informers.root_ca_config_maps.clone();
    tokio::spawn(enqueue_changes(namespaces.subscribe(), queue.clone(), |c| {
        c.new.as_deref().and_then(|n| n.metadata.name.clone()).into_iter().collect()
    }));
    tokio::spawn(enqueue_changes(maps.subscribe(), queue.clone(), |c| {
        c.new.as_deref().or(c.old.as_deref()).and_then(|m| m.metadata.namespace.clone()).into_iter().collect()
    }));
    namespaces.wait_synced().await;
    maps.wait_synced().await;
    resync(namespaces.store(), queue.clone(), ctx.config.resync_period, |n: &Namespace| n.metadata.name.clone());
    let r = Publisher { client: ctx.client.clone(), namespaces: namespaces.store(), maps: maps.store(), ca };
    run_workers(Arc::new(r), queue, WORKERS, ctx.metrics.clone()).await;
    Err(RootCaError::Stopped)
}

struct Publisher {
    client: Client,
    namespaces: Store<Namespace>,
    maps: Store<ConfigMap>,
    ca: String,
}

impl Reconciler for Publisher {
    type Key = String;
    type Error = RootCaError;

    fn name(&self) -> &'static str {
        "root-ca-cert-publisher"
    }

    async fn reconcile(&self, namespace: &String) -> Result<Action, RootCaError> {
        let Some(ns) = self.namespaces.get_named("", namespace) else { return Ok(Action::Done) };
        let existing = self.maps.get_named(namespace, ROOT_CA_CONFIGMAP);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let result = match decide(&ns, existing.as_deref(), &self.ca) {
            Change::None => return Ok(Action::Done),
            Change::Create(cm) => api.create(&PostParams::default(), &cm).await.map(|_| "created"),
            Change::Update(cm) => api.replace(ROOT_CA_CONFIGMAP, &PostParams::default(), &cm).await.map(|_| "repaired"),
        };
        match result {
            Ok(what) => {
                tracing::info!(namespace = %namespace, what, "{ROOT_CA_CONFIGMAP}");
                Ok(Action::Done)
            }
            // A stale cache (409) or a namespace going away (403/404): the next event or resync decides again.
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(Action::Done),
            Err(source) => Err(RootCaError::Write { namespace: namespace.clone(), source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Namespace {
        Namespace {
            metadata: kube::api::ObjectMeta { name: Some("n".into()), ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn creates_repairs_and_leaves_alone() {
        let Change::Create(cm) = decide(&ns(), None, "CA") else { panic!("expected a create") };
        assert_eq!(cm.data.as_ref().unwrap()[CA_KEY], "CA");
        assert_eq!(cm.metadata.namespace.as_deref(), Some("n"));
        assert_eq!(decide(&ns(), Some(&cm), "CA"), Change::None);
        let mut changed = cm.clone();
        changed.data = Some(BTreeMap::from([(CA_KEY.to_string(), "tampered".to_string()), ("x".into(), "y".into())]));
        let Change::Update(fixed) = decide(&ns(), Some(&changed), "CA") else { panic!("expected an update") };
        assert_eq!(fixed.data, cm.data);
        let mut gone = ns();
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()));
        assert_eq!(decide(&gone, None, "CA"), Change::None);
        assert!(pem(&[vec![1, 2, 3]]).starts_with("-----BEGIN CERTIFICATE-----\nAQID\n"));
    }
}
