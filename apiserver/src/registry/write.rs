//! Writes: create, update (PUT), patch, delete and deletecollection.
//!
//! Every write is one store transaction guarded by compares: `Absent` on create,
//! `ModRevision` on update/delete (optimistic concurrency), plus the allocation keys
//! of Services. Unpinned writes (patches, PUTs without a resourceVersion) retry on a
//! concurrent modification; pinned ones answer 409 Conflict.

use http::StatusCode;
use knet_apimachinery::patch;
use rand::Rng;
use serde_json::{json, Value};

use super::decode::{check_type_meta, field_validation};
use super::strategy::{self, Part};
use super::{decode, encode, key, name_of, namespace_of, PatchType, Registry, WriteOptions};
use crate::admission;
use crate::alloc::{AllocError, Guard, Plan};
use crate::convert;
use crate::error::ApiError;
use crate::resources::{self, ResourceInfo};
use crate::storage::{Compare, Op, Txn};

/// How many times an unpinned write is retried on concurrent modification.
pub(super) const RETRIES: usize = 16;

/// The result of a write.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    /// 201 for creates, 200 for updates.
    pub code: StatusCode,
    /// `Warning` headers for the response (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
}

pub(super) fn is_services(res: &ResourceInfo) -> bool {
    res.group.is_empty() && res.plural == "services"
}

fn gen_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Turns allocation failures into kube-apiserver's answers.
fn alloc_error(res: &ResourceInfo, name: &str, e: AllocError) -> ApiError {
    match e {
        AllocError::Invalid(errs) => ApiError::invalid(res, name, errs),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The answer to a failed allocation compare: a requested value someone else took is
/// the user's error; a dynamically chosen one is retried.
fn guard_error(res: &ResourceInfo, name: &str, plan: &Plan, failed: &[usize], base: usize) -> Option<ApiError> {
    use knet_apimachinery::field::{FieldError, Path};
    for &i in failed {
        if i < base {
            continue;
        }
        match plan.guards.get(i - base) {
            Some(Guard::Ip { ip, requested: true }) => {
                return Some(ApiError::invalid(
                    res,
                    name,
                    vec![FieldError::invalid(
                        &Path::new("spec").child("clusterIPs"),
                        json!([ip.to_string()]),
                        format!("failed to allocate IP {ip}: provided IP is already allocated"),
                    )],
                ))
            }
            Some(Guard::Port { port, path, requested: true }) => {
                return Some(ApiError::invalid(
                    res,
                    name,
                    vec![FieldError::invalid(path, *port, "provided port is already allocated")],
                ))
            }
            _ => {}
        }
    }
    None
}

impl Registry {
    /// Writes `obj` at `k` together with an allocation plan in one transaction guarded by
    /// `guard` (compare 0) and the plan's compares (1…), and settles the plan.
    pub(super) async fn commit_put(
        &self,
        guard: Compare,
        k: &str,
        obj: &Value,
        plan: &Plan,
    ) -> Result<crate::storage::TxnResult, ApiError> {
        let value = match encode(obj) {
            Ok(v) => v,
            Err(e) => {
                self.alloc.finish(plan, false);
                return Err(e);
            }
        };
        let mut compares = vec![guard];
        compares.extend(plan.compares.iter().cloned());
        let mut ops = vec![Op::Put { key: k.to_string(), value }];
        ops.extend(plan.ops.iter().cloned());
        match self.store.txn(Txn { compares, ops }).await {
            Ok(r) => {
                self.alloc.finish(plan, r.succeeded);
                Ok(r)
            }
            Err(e) => {
                self.alloc.finish(plan, false);
                Err(e.into())
            }
        }
    }

    /// Checks that a namespaced write goes to a namespace that exists and is not terminating.
    async fn check_namespace(&self, res: &ResourceInfo, ns: Option<&str>) -> Result<(), ApiError> {
        let Some(ns) = ns.filter(|_| res.namespaced) else { return Ok(()) };
        let nsres =
            resources::find("", "v1", "namespaces").ok_or_else(|| ApiError::Internal("no namespaces".into()))?;
        match self.store.get(&key(nsres, None, ns)).await? {
            None => Err(ApiError::not_found(nsres, ns)),
            Some(kv) => {
                let obj = decode(&kv)?;
                if strategy::is_deleting(&obj) {
                    Err(ApiError::Forbidden(format!(
                        "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        res.qualified_plural(),
                        name_of(&obj)
                    )))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// POST: creates an object.
    pub async fn create(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type_meta(res, &mut obj)?;
        let warnings = field_validation(res, &obj, opts.field_validation)?;
        // Namespace of the object vs the URL.
        if res.namespaced {
            let url_ns = ns.unwrap_or("default");
            match namespace_of(&obj) {
                Some(n) if n != url_ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ))
                }
                _ => obj["metadata"]["namespace"] = json!(url_ns),
            }
        } else if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("namespace");
        }
        let ns = if res.namespaced { namespace_of(&obj).map(String::from) } else { None };
        self.check_namespace(res, ns.as_deref()).await?;
        let generate = obj.pointer("/metadata/generateName").and_then(Value::as_str).map(String::from);
        let explicit_name = !name_of(&obj).is_empty();
        // From here on the object is in its stored form, and the stored kind's rules apply to it.
        let sres = resources::storage_of(res);
        let mut obj = convert::to_storage(res, obj);
        strategy::prepare_for_create(sres, &mut obj);
        admission::default(sres, &mut obj)?;
        admission::prepare_for_create(sres, &mut obj)?;
        if self.service_account_admission && sres.group.is_empty() && sres.plural == "pods" {
            crate::serviceaccount::admission::admit(self, ns.as_deref().unwrap_or("default"), &mut obj).await?;
        }
        let mut last_err = None;
        for _ in 0..RETRIES {
            let mut o = obj.clone();
            if !explicit_name {
                if let Some(g) = &generate {
                    o["metadata"]["name"] = json!(format!("{g}{}", gen_suffix()));
                }
            }
            let name = name_of(&o).to_string();
            let errs = admission::validate(res, &o, None);
            if !errs.is_empty() {
                return Err(ApiError::invalid(sres, &name, errs));
            }
            let plan = if is_services(res) {
                self.alloc.plan(&mut o, None).map_err(|e| alloc_error(res, &name, e))?
            } else {
                Plan::default()
            };
            let k = key(res, ns.as_deref(), &name);
            if opts.dry_run {
                self.alloc.finish(&plan, false);
                return Ok(Written { object: convert::to_view(res, o), code: StatusCode::CREATED, warnings });
            }
            let r = self.commit_put(Compare::Absent(k.clone()), &k, &o, &plan).await?;
            if r.succeeded {
                if self.service_account_admission && sres.group.is_empty() && sres.plural == "namespaces" {
                    crate::serviceaccount::admission::ensure_default_account(self, &name).await;
                }
                super::set_resource_version(&mut o, r.revision);
                return Ok(Written { object: convert::to_view(res, o), code: StatusCode::CREATED, warnings });
            }
            if r.failed.contains(&0) {
                if explicit_name || generate.is_none() {
                    return Err(ApiError::already_exists(res, &name));
                }
                last_err = Some(ApiError::generate_name_conflict(res, &name));
                continue;
            }
            if let Some(e) = guard_error(res, &name, &plan, &r.failed, 1) {
                return Err(e);
            }
            // A dynamically chosen value was taken concurrently: try again.
        }
        Err(last_err.unwrap_or_else(|| ApiError::Internal("could not allocate after several attempts".into())))
    }

    /// The read-modify-write loop shared by PUT, PATCH and subresource writes.
    ///
    /// `mutate` gets the current object (as `res` shows it) and returns the desired one; a
    /// resourceVersion in it pins the write to that version. The answer is as `res` shows it.
    pub(crate) async fn update_with<F>(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        mutate: F,
    ) -> Result<Written, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let mut w = self.update_stored(res, ns, name, part, opts, mutate).await?;
        if convert::is_view(res) {
            w.object = convert::to_view(res, w.object);
        }
        Ok(w)
    }

    /// [`Registry::update_with`] answering with the object in its stored form.
    async fn update_stored<F>(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        mut mutate: F,
    ) -> Result<Written, ApiError>
    where
        F: FnMut(&Value) -> Result<Value, ApiError>,
    {
        let k = key(res, ns, name);
        let sres = resources::storage_of(res);
        for _ in 0..RETRIES {
            let Some(kv) = self.store.get(&k).await? else {
                return Err(ApiError::not_found(res, name));
            };
            let old = decode(&kv)?;
            let old_rv = kv.mod_revision.to_string();
            let mut new =
                if convert::is_view(res) { mutate(&convert::to_view(res, old.clone()))? } else { mutate(&old)? };
            check_type_meta(res, &mut new)?;
            let pinned = match new.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                Some(rv) if !rv.is_empty() => {
                    if rv != old_rv {
                        return Err(ApiError::conflict(res, name));
                    }
                    true
                }
                _ => false,
            };
            if name_of(&new) != name {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    name_of(&new)
                )));
            }
            if res.namespaced && namespace_of(&new).is_some_and(|n| Some(n) != ns) {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            let warnings = field_validation(res, &new, opts.field_validation)?;
            let mut new = convert::to_storage(res, new);
            strategy::prepare_for_update(sres, part, &mut new, &old);
            match part {
                Part::Main => {
                    admission::default(sres, &mut new)?;
                    admission::prepare_for_update(sres, &mut new, &old)?;
                    // Defaults may have made the spec what it was: then it is not a new generation.
                    strategy::follow_generation(sres, &mut new, &old);
                }
                Part::Status => admission::default(sres, &mut new)?,
                Part::Finalize => {}
            }
            let errs = match part {
                Part::Main | Part::Finalize => admission::validate(res, &new, Some(&old)),
                Part::Status => admission::validate_status(res, &new, &old),
            };
            if !errs.is_empty() {
                return Err(ApiError::invalid(sres, name, errs));
            }
            if strategy::same(&new, &old) {
                return Ok(Written { object: old, code: StatusCode::OK, warnings });
            }
            // The last finalizer of an object whose deletion is due is gone: the object goes (a pod in
            // graceful deletion stays until its grace period is over).
            if strategy::deletes_on_update(sres, &new, &old) {
                if opts.dry_run {
                    return Ok(Written { object: new, code: StatusCode::OK, warnings });
                }
                if let Some(rev) = self.remove(sres, &k, kv.mod_revision, &old).await? {
                    super::set_resource_version(&mut new, rev);
                    return Ok(Written { object: new, code: StatusCode::OK, warnings });
                }
                if pinned {
                    return Err(ApiError::conflict(res, name));
                }
                continue;
            }
            let plan = if is_services(sres) && part == Part::Main {
                self.alloc.plan(&mut new, Some(&old)).map_err(|e| alloc_error(res, name, e))?
            } else {
                Plan::default()
            };
            if opts.dry_run {
                self.alloc.finish(&plan, false);
                return Ok(Written { object: new, code: StatusCode::OK, warnings });
            }
            let r = self.commit_put(Compare::ModRevision(k.clone(), kv.mod_revision), &k, &new, &plan).await?;
            if r.succeeded {
                super::set_resource_version(&mut new, r.revision);
                return Ok(Written { object: new, code: StatusCode::OK, warnings });
            }
            if let Some(e) = guard_error(res, name, &plan, &r.failed, 1) {
                return Err(e);
            }
            if r.failed.contains(&0) && pinned {
                return Err(ApiError::conflict(res, name));
            }
        }
        Err(ApiError::conflict(res, name))
    }

    /// PUT: replaces an object (or creates it where the kind allows).
    pub async fn update(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        part: Part,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        check_type_meta(res, &mut body)?;
        if name_of(&body) != name {
            if name_of(&body).is_empty() {
                body["metadata"]["name"] = json!(name);
            } else {
                return Err(ApiError::BadRequest(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    name_of(&body)
                )));
            }
        }
        if res.namespaced && namespace_of(&body).is_none() {
            if let Some(ns) = ns {
                body["metadata"]["namespace"] = json!(ns);
            }
        }
        let r = self.update_with(res, ns, name, part, opts, |_| Ok(body.clone())).await;
        match r {
            Err(ApiError::NotFound { .. }) if part == Part::Main && strategy::allow_create_on_update(res) => {
                if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.remove("resourceVersion");
                }
                self.create(res, ns, body, opts).await
            }
            other => other,
        }
    }

    /// PATCH: applies a JSON, merge or strategic merge patch.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        res: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        part: Part,
        ptype: PatchType,
        patch_doc: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let schema = match ptype {
            // Without a patch schema only the schemaless patch types are served (as for custom resources).
            PatchType::StrategicMerge => Some(patch::patch_schema(&res.api_version(), res.kind).ok_or_else(|| {
                ApiError::UnsupportedMediaType("application/json-patch+json, application/merge-patch+json".into())
            })?),
            // Server-side apply is not served: the 415 lists the patch types that are (client-side
            // `kubectl apply` sends a strategic merge patch).
            PatchType::Apply => return Err(ApiError::UnsupportedMediaType(PatchType::ACCEPTED.into())),
            _ => None,
        };
        if ptype != PatchType::Json && !patch_doc.is_object() {
            return Err(ApiError::BadRequest("the patch must be a JSON object".into()));
        }
        // A JSON patch that is not a list of operations does not decode: 400, as kube-apiserver answers
        // (operations that do not apply are 422, below).
        if ptype == PatchType::Json {
            let not_a = |what: &str, go_type: &str| {
                ApiError::BadRequest(format!("json: cannot unmarshal {what} into Go value of type {go_type}"))
            };
            let ops = patch_doc.as_array().ok_or_else(|| not_a(patch::json_type_name(patch_doc), "jsonpatch.Patch"))?;
            if let Some(op) = ops.iter().find(|op| !op.is_object()) {
                return Err(not_a(patch::json_type_name(op), "jsonpatch.Operation"));
            }
        }
        self.update_with(res, ns, name, part, opts, |cur| {
            // Patches apply to the object without its resourceVersion unless they set one.
            let mut base = cur.clone();
            if let Some(m) = base.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            let out = match ptype {
                PatchType::Json => patch::json_patch(&base, patch_doc),
                PatchType::Merge => Ok(patch::merge_patch(&base, patch_doc)),
                PatchType::StrategicMerge => schema.map_or_else(
                    || Ok(patch::merge_patch(&base, patch_doc)),
                    |s| patch::strategic_merge_patch(&base, patch_doc, s),
                ),
                PatchType::Apply => Ok(base.clone()),
            };
            let patched = out.map_err(ApiError::from)?;
            // A patch whose result does not decode as the kind (or, under Strict, has unknown fields) is
            // an invalid patch, 422 on field `patch` as kube-apiserver answers; a PUT body gets 400.
            match field_validation(res, &patched, opts.field_validation) {
                Err(ApiError::BadRequest(msg)) => {
                    let prefix = format!("cannot be handled as a {}: ", res.kind);
                    let detail = msg.split_once(&prefix).map_or(msg.as_str(), |(_, d)| d);
                    Err(ApiError::Invalid {
                        group: res.group.into(),
                        kind: res.kind.into(),
                        name: name.into(),
                        errors: vec![knet_apimachinery::field::FieldError {
                            kind: knet_apimachinery::field::ErrorType::Invalid,
                            field: knet_apimachinery::field::Path::new("patch"),
                            value: None,
                            detail: detail.to_string(),
                        }],
                    })
                }
                _ => Ok(patched),
            }
        })
        .await
    }
}
