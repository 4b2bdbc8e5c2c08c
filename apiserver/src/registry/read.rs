//! Reads: get and list, with label and field selectors and limit/continue paging.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use knet_apimachinery::fields::FieldSelector;
use knet_apimachinery::labels::{self, Selector};
use serde_json::{json, Value};

use super::cache::Obj;
use super::{decode, key, prefix, ListOptions, Registry};
use crate::convert;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::storage::Revision;

/// One page of a list.
#[derive(Debug)]
pub struct Listing {
    pub items: Vec<Arc<Obj>>,
    pub resource_version: Revision,
    pub continue_token: Option<String>,
}

/// Parsed label and field selectors of a request.
pub struct Filter {
    pub labels: Option<Selector>,
    pub fields: Option<FieldSelector>,
    /// The resource the request named: its field labels are matched against stored objects
    /// through [`convert::stored_field_label`].
    res: ResourceInfo,
}

impl Filter {
    pub fn new(res: &ResourceInfo, opts: &ListOptions) -> Result<Self, ApiError> {
        let labels = match &opts.label_selector {
            Some(s) => {
                // The parser words its errors as Kubernetes does, "unable to parse requirement: …" included.
                Some(labels::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?)
            }
            None => None,
        };
        let fields = match &opts.field_selector {
            Some(s) => {
                let fs = FieldSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                for r in fs.requirements() {
                    let supported = matches!(r.field.as_str(), "metadata.name" | "metadata.namespace")
                        || res.field_selectors.contains(&r.field.as_str());
                    if !supported {
                        return Err(ApiError::BadRequest(format!("field label not supported: {}", r.field)));
                    }
                }
                Some(fs)
            }
            None => None,
        };
        Ok(Filter { labels, fields, res: *res })
    }

    /// Does the filter select everything?
    pub fn is_everything(&self) -> bool {
        self.labels.as_ref().is_none_or(|l| l.is_everything()) && self.fields.is_none()
    }

    /// Whether a stored object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(sel) = &self.labels {
            let labels: BTreeMap<String, String> = obj
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
                .unwrap_or_default();
            if !sel.matches(&labels) {
                return false;
            }
        }
        if let Some(fs) = &self.fields {
            if !fs.matches(|f| field_value(obj, convert::stored_field_label(&self.res, f))) {
                return false;
            }
        }
        true
    }
}

/// The value of a selectable field, as a string (`spec.hostNetwork` → "true"/"false").
pub fn field_value(obj: &Value, field: &str) -> Option<String> {
    // An Event's `source` is its source component, else its reporting component (new-style events).
    if field == "source" {
        let component = |p: &str| obj.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
        return component("/source/component").or_else(|| component("/reportingComponent"));
    }
    let path = field;
    let mut cur = obj;
    for part in path.split('.') {
        cur = match cur.get(part) {
            Some(v) => v,
            None => {
                return match field {
                    "spec.hostNetwork" | "spec.unschedulable" => Some("false".into()),
                    _ => None,
                }
            }
        };
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The opaque `continue` token: where the next page starts and the list's revision.
fn encode_continue(rv: Revision, start_after: &str) -> String {
    let raw = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start_after});
    base64::engine::general_purpose::STANDARD.encode(raw.to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = || ApiError::BadRequest("continue key is not valid: the continue token is malformed".into());
    let raw = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?.to_string();
    Ok((rv, start))
}

impl Registry {
    /// GET of one object.
    pub async fn get(&self, res: &ResourceInfo, ns: Option<&str>, name: &str) -> Result<Value, ApiError> {
        match self.store.get(&key(res, ns, name)).await? {
            Some(kv) => Ok(convert::to_view(res, decode(&kv)?)),
            None => Err(ApiError::not_found(res, name)),
        }
    }

    /// Waits (briefly) until the store has reached `rv`, for reads that ask for a
    /// resourceVersion newer than what the store has acknowledged.
    async fn wait_for_revision(&self, rv: Revision) -> Result<(), ApiError> {
        for _ in 0..30 {
            if self.store.revision() >= rv {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ApiError::Unavailable(format!("Too large resource version: {rv}, current: {}", self.store.revision())))
    }

    /// LIST with selectors and paging; the items as `res` shows them.
    pub async fn list(&self, res: &ResourceInfo, ns: Option<&str>, opts: &ListOptions) -> Result<Listing, ApiError> {
        let mut listing = self.list_stored(res, ns, opts).await?;
        if convert::is_view(res) {
            listing.items = listing.items.iter().map(|o| convert::obj_to_view(res, o)).collect();
        }
        Ok(listing)
    }

    /// LIST with the items in their stored form.
    async fn list_stored(&self, res: &ResourceInfo, ns: Option<&str>, opts: &ListOptions) -> Result<Listing, ApiError> {
        let filter = Filter::new(res, opts)?;
        if let Some(rv) = opts.resource_version.as_deref() {
            let rv: Revision = rv.parse().map_err(|_| {
                ApiError::BadRequest(format!("resourceVersion: Invalid value: {rv:?}: must be an integer"))
            })?;
            if rv > 0 {
                self.wait_for_revision(rv).await?;
            }
            if opts.resource_version_match.as_deref() == Some("Exact") && rv != self.store.revision() {
                return Err(ApiError::too_old(rv, self.store.revision()));
            }
        }
        let prefix = prefix(res, ns);
        let (mut start_after, list_rv) = match &opts.continue_token {
            Some(t) => {
                let (rv, start) = decode_continue(t)?;
                (Some(start), Some(rv))
            }
            None => (None, None),
        };
        let limit = opts.limit.map(|l| l as usize);
        if let Some(cache) = &self.cache {
            // A consistent read: the cache must have caught up with the store.
            if cache.wait_for(self.store.revision(), Duration::from_secs(5)).await {
                return Ok(self.list_cached(cache, &prefix, start_after.as_deref(), list_rv, limit, &filter));
            }
            tracing::warn!("watch cache is behind the store; listing from the store");
        }
        let mut items = Vec::new();
        let mut revision = None;
        let chunk = limit.map(|l| l.max(64)).unwrap_or(0);
        loop {
            let page = self.store.range(&prefix, start_after.as_deref(), chunk).await?;
            revision.get_or_insert(page.revision);
            let mut last_key = None;
            let mut cut = false;
            for kv in &page.kvs {
                let obj = decode(kv)?;
                last_key = Some(kv.key.clone());
                if filter.matches(&obj) {
                    items.push(Arc::new(Obj::new(obj)));
                    if limit.is_some_and(|l| items.len() >= l) {
                        cut = true;
                        break;
                    }
                }
            }
            let list_revision = list_rv.or(revision).unwrap_or(0);
            if cut {
                let lk = last_key.unwrap_or_default();
                // Is there anything after the cut?
                let rest = self.store.range(&prefix, Some(&lk), 1).await?;
                let continue_token = if rest.kvs.is_empty() { None } else { Some(encode_continue(list_revision, &lk)) };
                return Ok(Listing { items, resource_version: list_revision, continue_token });
            }
            if !page.more || last_key.is_none() {
                return Ok(Listing { items, resource_version: list_revision, continue_token: None });
            }
            start_after = last_key;
        }
    }

    fn list_cached(
        &self,
        cache: &super::cache::WatchCache,
        prefix: &str,
        start_after: Option<&str>,
        list_rv: Option<Revision>,
        limit: Option<usize>,
        filter: &Filter,
    ) -> Listing {
        let mut items = Vec::new();
        let mut last_key = String::new();
        let mut more = false;
        let rev = cache.scan(prefix, start_after, |k, o| {
            if limit.is_some_and(|l| items.len() >= l) {
                more = true;
                return false;
            }
            if filter.matches(&o.value) {
                items.push(o.clone());
                last_key = k.to_string();
            }
            true
        });
        let resource_version = list_rv.unwrap_or(rev);
        let continue_token = more.then(|| encode_continue(resource_version, &last_key));
        Listing { items, resource_version, continue_token }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_values() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert_eq!(field_value(&pod, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(field_value(&pod, "status.phase").as_deref(), Some("Running"));
        assert_eq!(field_value(&pod, "spec.hostNetwork").as_deref(), Some("false"));
        assert_eq!(field_value(&pod, "status.podIP"), None);
    }

    #[test]
    fn continue_round_trip() {
        let t = encode_continue(42, "/core/pods/default/x");
        assert_eq!(decode_continue(&t).unwrap(), (42, "/core/pods/default/x".to_string()));
        assert!(decode_continue("!!").is_err());
    }
}
