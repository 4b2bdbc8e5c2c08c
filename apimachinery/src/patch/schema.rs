//! Patch schemas: for each field of a kind, its patch strategy and merge key, and the
//! schema of its value.
//!
//! Kubernetes reads these from the `patchStrategy` and `patchMergeKey` struct tags of
//! `k8s.io/api`'s Go types. knet walks the same types as k8s-openapi describes them (its
//! JSON schemas: which field holds which type) and takes the tags from the one table of
//! [`super::tags`]. A field without tags merges like a JSON merge patch (objects merged,
//! lists replaced), as an untagged field does in Kubernetes; maps of objects are merged
//! as plain objects.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use k8s_openapi::api::{apps, autoscaling, coordination, core, discovery, events, networking};
use k8s_openapi::Resource;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::Value;

use super::tags::field_tags;

/// How a strategic merge patch treats a field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchStrategy {
    /// No tag: objects are merged, lists replaced.
    Default,
    /// `patchStrategy:"merge"`: lists are merged, by merge key for lists of objects and as
    /// sets for lists of scalars.
    Merge,
    /// `patchStrategy:"replace"`: the value is replaced, even an object.
    Replace,
}

/// The patch metadata of one field.
#[derive(Clone, Copy, Debug)]
pub struct FieldPatchMeta {
    pub strategy: PatchStrategy,
    /// `retainKeys` is part of the strategy: clients send `$retainKeys` for this field. It
    /// does not change how a patch is applied.
    pub retain_keys: bool,
    /// The field that identifies list elements (`patchMergeKey`), e.g. `name`.
    pub merge_key: Option<&'static str>,
    /// The schema of the value, or of the list's elements.
    pub schema: &'static PatchSchema,
}

/// A field's tags and, when its value (or list element) is an object type, which one.
#[derive(Clone, Copy, Debug)]
struct Field {
    strategy: PatchStrategy,
    retain_keys: bool,
    merge_key: Option<&'static str>,
    /// Index of the value's schema in [`Graph::schemas`].
    value: Option<usize>,
}

const UNTAGGED: Field = Field { strategy: PatchStrategy::Default, retain_keys: false, merge_key: None, value: None };

/// The patch metadata of the fields of one object type.
#[derive(Debug)]
pub struct PatchSchema {
    fields: BTreeMap<String, Field>,
}

impl PatchSchema {
    /// The metadata of a field; untagged (merge objects, replace lists) when not listed.
    pub fn field(&self, name: &str) -> FieldPatchMeta {
        let Some(f) = self.fields.get(name) else {
            return FieldPatchMeta {
                strategy: PatchStrategy::Default,
                retain_keys: false,
                merge_key: None,
                schema: &EMPTY,
            };
        };
        let schema = f.value.and_then(|i| graph().schemas.get(i)).unwrap_or(&EMPTY);
        FieldPatchMeta { strategy: f.strategy, retain_keys: f.retain_keys, merge_key: f.merge_key, schema }
    }

    /// The schema with no tagged field: a strategic merge patch with it behaves like a
    /// JSON merge patch that also understands the `$` directives.
    pub fn empty() -> &'static PatchSchema {
        &EMPTY
    }
}

static EMPTY: PatchSchema = PatchSchema { fields: BTreeMap::new() };

/// The patch schemas of every type reachable from the served kinds.
struct Graph {
    schemas: Vec<PatchSchema>,
    /// (apiVersion, kind, index in `schemas`).
    kinds: Vec<(&'static str, &'static str, usize)>,
}

fn graph() -> &'static Graph {
    static GRAPH: OnceLock<Graph> = OnceLock::new();
    GRAPH.get_or_init(build)
}

/// A served kind and the name of its type's schema.
pub(super) struct Kind {
    api_version: &'static str,
    kind: &'static str,
    schema: String,
}

/// Adds a kind's types to the generator.
fn add<T: Resource + JsonSchema>(gen: &mut SchemaGenerator) -> Kind {
    gen.subschema_for::<T>();
    Kind { api_version: T::API_VERSION, kind: T::KIND, schema: T::schema_name().into_owned() }
}

/// The kinds knet serves, with the schemas of their types (status and scale subresources
/// use their object's kind, `autoscaling/v1` `Scale` its own).
pub(super) fn served_kinds() -> (Vec<Kind>, serde_json::Map<String, Value>) {
    let mut gen = SchemaGenerator::new(SchemaSettings::openapi3());
    let kinds = vec![
        add::<core::v1::Pod>(&mut gen),
        add::<core::v1::Service>(&mut gen),
        add::<core::v1::Node>(&mut gen),
        add::<core::v1::Namespace>(&mut gen),
        add::<core::v1::ServiceAccount>(&mut gen),
        add::<core::v1::ReplicationController>(&mut gen),
        add::<core::v1::Endpoints>(&mut gen),
        add::<core::v1::Secret>(&mut gen),
        add::<core::v1::ConfigMap>(&mut gen),
        add::<core::v1::Event>(&mut gen),
        add::<events::v1::Event>(&mut gen),
        add::<apps::v1::Deployment>(&mut gen),
        add::<apps::v1::ReplicaSet>(&mut gen),
        add::<discovery::v1::EndpointSlice>(&mut gen),
        add::<networking::v1::NetworkPolicy>(&mut gen),
        add::<networking::v1::Ingress>(&mut gen),
        add::<networking::v1::IngressClass>(&mut gen),
        add::<coordination::v1::Lease>(&mut gen),
        add::<autoscaling::v1::Scale>(&mut gen),
    ];
    (kinds, gen.take_definitions(true))
}

/// The schema a property's value (or list element) refers to: `$ref`, or a described
/// `allOf: [{$ref}]`, directly or as `items`.
fn referenced(prop: &Value) -> Option<&str> {
    fn direct(v: &Value) -> Option<&str> {
        let r = v.get("$ref").or_else(|| v.pointer("/allOf/0/$ref"))?.as_str()?;
        r.rsplit('/').next()
    }
    direct(prop).or_else(|| direct(prop.get("items")?))
}

fn strategy_of(tag: &str) -> (PatchStrategy, bool) {
    let mut strategy = PatchStrategy::Default;
    let mut retain_keys = false;
    for part in tag.split(',') {
        match part {
            "merge" => strategy = PatchStrategy::Merge,
            "replace" => strategy = PatchStrategy::Replace,
            "retainKeys" => retain_keys = true,
            _ => {}
        }
    }
    (strategy, retain_keys)
}

fn build() -> Graph {
    let (kinds, defs) = served_kinds();
    let index: HashMap<&str, usize> = defs.keys().enumerate().map(|(i, name)| (name.as_str(), i)).collect();
    let mut tags: HashMap<(&str, &str), Field> = HashMap::new();
    for t in field_tags() {
        let (strategy, retain_keys) = strategy_of(t.strategy);
        let merge_key = (!t.merge_key.is_empty()).then_some(t.merge_key);
        tags.insert((t.schema.as_str(), t.field), Field { strategy, retain_keys, merge_key, value: None });
    }
    let schemas = defs
        .iter()
        .map(|(name, def)| {
            let mut fields = BTreeMap::new();
            let props = def.get("properties").and_then(Value::as_object).into_iter().flatten();
            for (field, prop) in props {
                let value = referenced(prop).and_then(|r| index.get(r).copied());
                let tag = tags.get(&(name.as_str(), field.as_str())).copied();
                if value.is_none() && tag.is_none() {
                    continue;
                }
                fields.insert(field.clone(), Field { value, ..tag.unwrap_or(UNTAGGED) });
            }
            PatchSchema { fields }
        })
        .collect();
    let kinds =
        kinds.into_iter().filter_map(|k| Some((k.api_version, k.kind, *index.get(k.schema.as_str())?))).collect();
    Graph { schemas, kinds }
}

/// The patch schema of a kind knet serves, by `apiVersion` and `kind` (status and scale
/// subresources use their object's kind, `autoscaling/v1` `Scale` its own). `None` for
/// any other kind: kube-apiserver refuses strategic merge patches for kinds it has no
/// schema for (custom resources) with 415 Unsupported Media Type.
pub fn patch_schema(api_version: &str, kind: &str) -> Option<&'static PatchSchema> {
    let g = graph();
    let &(_, _, i) = g.kinds.iter().find(|(v, k, _)| *v == api_version && *k == kind)?;
    g.schemas.get(i)
}
