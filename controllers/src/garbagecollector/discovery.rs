//! The resources the API serves, found through API discovery, and the mapping from an owner reference's
//! `apiVersion`/`kind` to the resource to call (client-go's RESTMapper). The garbage collector watches every
//! resource that supports `list`, `watch` and `delete`; the namespace controller deletes every namespaced
//! resource that supports `delete`.

use std::collections::HashMap;

use kube::discovery::{verbs, ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;

/// Resources the garbage collector never watches (upstream's ignored resources: events are never owners and
/// are too many to watch).
const GC_IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// One served resource at its preferred version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServedResource {
    /// Group, version, kind and plural.
    pub ar: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The verbs discovery lists for it.
    pub verbs: Vec<String>,
}

impl ServedResource {
    fn from_discovery(ar: ApiResource, caps: &ApiCapabilities) -> Self {
        ServedResource { ar, namespaced: caps.scope == Scope::Namespaced, verbs: caps.operations.clone() }
    }

    /// Whether discovery lists `verb` for this resource.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `plural.group` (or `plural` for the core group), as `kubectl` and upstream messages name resources.
    pub fn qualified_name(&self) -> String {
        if self.ar.group.is_empty() {
            self.ar.plural.clone()
        } else {
            format!("{}.{}", self.ar.plural, self.ar.group)
        }
    }

    /// Whether the garbage collector watches this resource.
    pub fn garbage_collectable(&self) -> bool {
        [verbs::LIST, verbs::WATCH, verbs::DELETE].iter().all(|v| self.supports(v))
            && !GC_IGNORED.contains(&(self.ar.group.as_str(), self.ar.plural.as_str()))
    }
}

/// What discovery found: every resource at its group's preferred version, and a map from every served
/// `apiVersion` + kind (any version) to its resource.
#[derive(Clone, Debug, Default)]
pub struct ServedResources {
    /// Preferred-version resources, sorted by group and plural.
    pub preferred: Vec<ServedResource>,
    by_kind: HashMap<(String, String), ServedResource>,
}

impl ServedResources {
    /// Builds the table from discovered resources: `all` holds every version, `preferred` the preferred ones.
    pub fn new(all: Vec<ServedResource>, mut preferred: Vec<ServedResource>) -> Self {
        preferred.sort_by(|a, b| (&a.ar.group, &a.ar.plural).cmp(&(&b.ar.group, &b.ar.plural)));
        let mut by_kind = HashMap::new();
        for r in all {
            by_kind.entry((r.ar.api_version.clone(), r.ar.kind.clone())).or_insert(r);
        }
        ServedResources { preferred, by_kind }
    }

    /// The resource serving `kind` at `api_version` (an owner reference's coordinates).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&ServedResource> {
        self.by_kind.get(&(api_version.to_string(), kind.to_string()))
    }

    /// Preferred-version resources the garbage collector watches.
    pub fn garbage_collectable(&self) -> impl Iterator<Item = &ServedResource> {
        self.preferred.iter().filter(|r| r.garbage_collectable())
    }

    /// Preferred-version namespaced resources that can be deleted (what a namespace's deletion removes).
    pub fn namespaced_deletable(&self) -> impl Iterator<Item = &ServedResource> {
        self.preferred.iter().filter(|r| r.namespaced && r.supports(verbs::DELETE))
    }
}

/// Runs API discovery.
pub async fn discover(client: &Client) -> Result<ServedResources, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut all = Vec::new();
    let mut preferred = Vec::new();
    for group in discovery.groups() {
        let pref = group.preferred_version_or_latest().to_string();
        for version in group.versions() {
            for (ar, caps) in group.versioned_resources(version) {
                let r = ServedResource::from_discovery(ar, &caps);
                if version == pref {
                    preferred.push(r.clone());
                }
                all.push(r);
            }
        }
    }
    Ok(ServedResources::new(all, preferred))
}

#[cfg(test)]
pub(crate) fn served(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> ServedResource {
    let api_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    ServedResource {
        ar: ApiResource {
            group: group.into(),
            version: version.into(),
            api_version,
            kind: kind.into(),
            plural: plural.into(),
        },
        namespaced,
        verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_resolves() {
        let pods = served("", "v1", "Pod", "pods", true);
        let events = served("", "v1", "Event", "events", true);
        let nodes = served("", "v1", "Node", "nodes", false);
        let mut readonly = served("apps", "v1", "ReplicaSet", "replicasets", true);
        readonly.verbs = vec!["get".into(), "list".into(), "watch".into()];
        let all = vec![pods.clone(), events.clone(), nodes.clone(), readonly.clone()];
        let table = ServedResources::new(all.clone(), all);
        let gc: Vec<_> = table.garbage_collectable().map(|r| r.ar.plural.as_str()).collect();
        assert_eq!(gc, ["nodes", "pods"]);
        let ns: Vec<_> = table.namespaced_deletable().map(|r| r.ar.plural.as_str()).collect();
        assert_eq!(ns, ["events", "pods"]);
        assert_eq!(table.resolve("v1", "Pod"), Some(&pods));
        assert_eq!(table.resolve("apps/v1", "Deployment"), None);
        assert_eq!(readonly.qualified_name(), "replicasets.apps");
        assert_eq!(pods.qualified_name(), "pods");
    }
}
