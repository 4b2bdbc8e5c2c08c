//! Deletes: DELETE of one object and of a collection, and the removal of an object from the store
//! (shared with updates that remove an object's last finalizer).
//!
//! What a delete does to an object is planned by [`strategy::plan_delete`] (graceful deletion,
//! finalizers); this module applies the plan in one transaction guarded by the object's revision.

use http::StatusCode;
use serde_json::{json, Value};

use super::strategy::{self, Deletion};
use super::write::{is_services, RETRIES};
use super::{decode, key, name_of, namespace_of, DeleteOptions, ListOptions, Registry};
use crate::alloc::Plan;
use crate::convert;
use crate::error::ApiError;
use crate::resources::{self, ResourceInfo};
use crate::storage::{Compare, Op, Txn};

/// Why a uid or resourceVersion precondition does not hold for `obj` (stored at revision `rev`),
/// in kube-apiserver's words; `None` when it holds.
pub(super) fn precondition_failure(uid: Option<&str>, rv: Option<&str>, obj: &Value, rev: i64) -> Option<String> {
    let cur = obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
    if let Some(uid) = uid.filter(|u| *u != cur) {
        return Some(format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {cur}"));
    }
    rv.filter(|rv| *rv != rev.to_string()).map(|rv| {
        format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {rev}")
    })
}

impl Registry {
    /// Removes the object at `k` if it is still at revision `rev`, with a Service's allocations in the
    /// same transaction. Returns the revision of the removal, or `None` if the object changed meanwhile.
    pub(super) async fn remove(
        &self,
        sres: &ResourceInfo,
        k: &str,
        rev: i64,
        old: &Value,
    ) -> Result<Option<i64>, ApiError> {
        let plan = if is_services(sres) { self.alloc.plan_release(old) } else { Plan::default() };
        let mut ops = vec![Op::Delete { key: k.to_string() }];
        ops.extend(plan.ops.iter().cloned());
        let r = self.store.txn(Txn { compares: vec![Compare::ModRevision(k.to_string(), rev)], ops }).await;
        self.alloc.finish(&plan, r.as_ref().is_ok_and(|r| r.succeeded));
        let r = r?;
        Ok(r.succeeded.then_some(r.revision))
    }

    /// DELETE of one object. Returns the object as it was deleted (or as it now waits on finalizers
    /// or graceful termination), as `res` shows it, and the HTTP code.
    pub async fn delete(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, StatusCode), ApiError> {
        let (obj, code) = self.delete_stored(res, ns, name, opts).await?;
        Ok((convert::to_view(res, obj), code))
    }

    /// [`Registry::delete`] answering with the object in its stored form.
    async fn delete_stored(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, StatusCode), ApiError> {
        let k = key(res, ns, name);
        let sres = resources::storage_of(res);
        // kube-apiserver answers 202 for an object that stays only when the client asked for
        // cascading deletion with `orphanDependents: false`; else 200.
        let staying = if opts.orphan_dependents == Some(false) { StatusCode::ACCEPTED } else { StatusCode::OK };
        for _ in 0..RETRIES {
            let Some(kv) = self.store.get(&k).await? else {
                return Err(ApiError::not_found(res, name));
            };
            let old = decode(&kv)?;
            let uid = opts.precondition_uid.as_deref();
            let rv = opts.precondition_resource_version.as_deref();
            if let Some(why) = precondition_failure(uid, rv, &old, kv.mod_revision) {
                return Err(ApiError::conflict_with(res, name, &why));
            }
            match strategy::plan_delete(sres, &old, opts, jiff::Timestamp::now()) {
                Deletion::Unchanged => return Ok((old, staying)),
                Deletion::Mark(new) if strategy::same(&new, &old) => return Ok((old, staying)),
                Deletion::Mark(mut new) => {
                    if opts.dry_run {
                        return Ok((new, staying));
                    }
                    let guard = Compare::ModRevision(k.clone(), kv.mod_revision);
                    let r = self.commit_put(guard, &k, &new, &Plan::default()).await?;
                    if r.succeeded {
                        super::set_resource_version(&mut new, r.revision);
                        return Ok((new, staying));
                    }
                }
                Deletion::Remove => {
                    if opts.dry_run {
                        return Ok((old, StatusCode::OK));
                    }
                    if let Some(rev) = self.remove(sres, &k, kv.mod_revision, &old).await? {
                        let mut gone = old;
                        super::set_resource_version(&mut gone, rev);
                        return Ok((gone, StatusCode::OK));
                    }
                }
            }
        }
        Err(ApiError::conflict(res, name))
    }

    /// DELETE of a collection: every object matching the selectors.
    pub async fn delete_collection(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        list_opts: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let listing =
            self.list(res, ns, &ListOptions { limit: None, continue_token: None, ..list_opts.clone() }).await?;
        let mut items = Vec::new();
        for obj in listing.items {
            let name = name_of(&obj.value).to_string();
            let ons = namespace_of(&obj.value).map(String::from);
            match self.delete(res, ons.as_deref(), &name, opts).await {
                Ok((o, _)) => items.push(o),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(json!({
            "kind": res.list_kind,
            "apiVersion": res.api_version(),
            "metadata": {"resourceVersion": self.store.revision().to_string()},
            "items": items,
        }))
    }
}
