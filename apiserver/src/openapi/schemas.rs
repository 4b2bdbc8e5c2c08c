//! `components.schemas` of a group-version's OpenAPI v3 document.
//!
//! The schemas come from k8s-openapi's `schemars` implementations (so every field keeps
//! its Kubernetes description, and names are Kubernetes' own, like
//! `io.k8s.api.core.v1.Service`), generated with schemars' OpenAPI 3.0 settings: `$ref`s
//! point at `#/components/schemas/…`, and a `$ref` with a sibling description becomes
//! `allOf: [{$ref}]` as kube-apiserver writes it (kubectl explain prints the field's own
//! description that way). On top of that knet adds what kube-apiserver's document has and
//! k8s-openapi lacks: `x-kubernetes-group-version-kind` on each kind, the `…List` kinds,
//! and the patch-strategy/list-type extensions of the fields that have them (from the one
//! table of [`knet_apimachinery::patch::field_tags`], which strategic merge patches use too).

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::Binding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, Patch, Status, WatchEvent};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::resources::{ResourceInfo, RESOURCES};
use knet_apimachinery::patch::field_tags;

/// The OpenAPI schema name of a resource's kind, like `io.k8s.api.apps.v1.Deployment`.
pub(crate) fn kind_schema_name(res: &ResourceInfo) -> Option<String> {
    crate::with_type!(res, T => <T as JsonSchema>::schema_name().into_owned())
}

/// The schema name of a resource's list kind: `io.k8s.api.apps.v1.DeploymentList`.
pub(crate) fn list_schema_name(res: &ResourceInfo) -> Option<String> {
    kind_schema_name(res).map(|n| format!("{n}List"))
}

/// `#/components/schemas/{name}`.
pub(crate) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
pub(crate) const BINDING: &str = "io.k8s.api.core.v1.Binding";
pub(crate) const TOKEN_REQUEST: &str = "io.k8s.api.authentication.v1.TokenRequest";

/// The description of `field` in the schema named `schema` (like
/// `io.k8s.api.core.v1.ServiceSpec`, `type`), from the schemas of every served type.
pub(crate) fn field_description(schema: &str, field: &str) -> Option<&'static str> {
    static ALL: OnceLock<Map<String, Value>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let all: Vec<&'static ResourceInfo> = RESOURCES.iter().collect();
        components(&all)
    });
    all.get(schema)?.pointer(&format!("/properties/{field}/description"))?.as_str()
}

/// The component schemas for the resources of one group-version.
pub(super) fn components(resources: &[&'static ResourceInfo]) -> Map<String, Value> {
    let mut gen = SchemaGenerator::new(SchemaSettings::openapi3());
    // Which schema is which kind; (schema name, gvk) pairs.
    let mut kinds: Vec<(String, Value)> = Vec::new();
    for res in resources {
        let name = crate::with_type!(res, T => {
            gen.subschema_for::<T>();
            <T as JsonSchema>::schema_name().into_owned()
        });
        if let Some(name) = name {
            kinds.push((name, gvk(res.group, res.version, res.kind)));
        }
    }
    gen.subschema_for::<ListMeta>();
    gen.subschema_for::<DeleteOptions>();
    gen.subschema_for::<Status>();
    gen.subschema_for::<Patch>();
    gen.subschema_for::<WatchEvent<Status>>();
    if resources.iter().any(|r| r.has_subresource("scale")) {
        gen.subschema_for::<Scale>();
        kinds.push((SCALE.into(), gvk("autoscaling", "v1", "Scale")));
    }
    if resources.iter().any(|r| r.has_subresource("binding")) {
        gen.subschema_for::<Binding>();
        kinds.push((BINDING.into(), gvk("", "v1", "Binding")));
    }
    if resources.iter().any(|r| r.has_subresource("token")) {
        gen.subschema_for::<TokenRequest>();
        kinds.push((TOKEN_REQUEST.into(), gvk("authentication.k8s.io", "v1", "TokenRequest")));
    }
    let mut defs = gen.take_definitions(true);

    for (name, gvk) in &kinds {
        if let Some(Value::Object(schema)) = defs.get_mut(name) {
            mark_kind(schema, gvk.clone());
        }
    }
    // Options and Status as kube-apiserver tags them: under the core and this group.
    let groups = resources.iter().map(|r| (r.group, r.version));
    let mut option_gvks = vec![gvk("", "v1", "DeleteOptions")];
    for (g, v) in groups {
        let k = gvk(g, v, "DeleteOptions");
        if !option_gvks.contains(&k) {
            option_gvks.push(k);
        }
    }
    let watch_gvks = option_gvks.iter().map(|g| gvk_with_kind(g, "WatchEvent")).collect();
    set_gvks(&mut defs, DELETE_OPTIONS, option_gvks);
    set_gvks(&mut defs, WATCH_EVENT, watch_gvks);
    set_gvks(&mut defs, STATUS, vec![gvk("", "v1", "Status")]);

    for res in resources {
        if let (Some(kind), Some(list)) = (kind_schema_name(res), list_schema_name(res)) {
            defs.insert(list, list_schema(res, &kind));
        }
    }
    apply_field_meta(&mut defs);
    defs
}

fn gvk_with_kind(gvk: &Value, kind: &str) -> Value {
    let mut g = gvk.clone();
    g["kind"] = json!(kind);
    g
}

fn set_gvks(defs: &mut Map<String, Value>, name: &str, gvks: Vec<Value>) {
    if let Some(Value::Object(schema)) = defs.get_mut(name) {
        schema.insert("x-kubernetes-group-version-kind".into(), Value::Array(gvks));
    }
}

/// Tags a top-level kind with its GVK and drops `metadata` from `required` (k8s-openapi
/// requires it because its Rust field is not optional; Kubernetes does not).
fn mark_kind(schema: &mut Map<String, Value>, gvk: Value) {
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            schema.remove("required");
        }
    }
    schema.insert("x-kubernetes-group-version-kind".into(), json!([gvk]));
}

/// The `…List` kind of a resource: `apiVersion`, `items`, `kind`, `metadata`.
fn list_schema(res: &ResourceInfo, kind_schema: &str) -> Value {
    json!({
        "description": format!("{}List is a list of {} objects.", res.kind, res.kind),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "items": {
                "description": format!("List of {}.", res.plural),
                "type": "array",
                "items": schema_ref(kind_schema),
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": {
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "allOf": [schema_ref(LIST_META)],
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": [gvk(res.group, res.version, res.list_kind)],
    })
}

/// Adds the patch-strategy and list-type extensions to the fields that have them.
fn apply_field_meta(defs: &mut Map<String, Value>) {
    for t in field_tags() {
        let Some(Value::Object(prop)) =
            defs.get_mut(&t.schema).and_then(|s| s.pointer_mut(&format!("/properties/{}", t.field)))
        else {
            continue;
        };
        if !t.strategy.is_empty() {
            prop.insert("x-kubernetes-patch-strategy".into(), json!(t.strategy));
        }
        if !t.merge_key.is_empty() {
            prop.insert("x-kubernetes-patch-merge-key".into(), json!(t.merge_key));
        }
        if !t.list_type.is_empty() {
            prop.insert("x-kubernetes-list-type".into(), json!(t.list_type));
        }
        if !t.list_map_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(t.list_map_keys));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> Map<String, Value> {
        let rs: Vec<&'static ResourceInfo> = RESOURCES.iter().filter(|r| r.group.is_empty()).collect();
        components(&rs)
    }

    #[test]
    fn kinds_carry_their_gvk_and_metadata_is_optional() {
        let defs = core();
        let svc = &defs["io.k8s.api.core.v1.Service"];
        assert_eq!(svc["x-kubernetes-group-version-kind"], json!([{"group": "", "kind": "Service", "version": "v1"}]));
        assert!(svc.get("required").is_none(), "metadata is not required in Kubernetes");
        let list = &defs["io.k8s.api.core.v1.ServiceList"];
        assert_eq!(list["x-kubernetes-group-version-kind"][0]["kind"], "ServiceList");
        assert_eq!(list["properties"]["items"]["items"]["$ref"], "#/components/schemas/io.k8s.api.core.v1.Service");
        assert_eq!(defs[SCALE]["x-kubernetes-group-version-kind"][0]["group"], "autoscaling");
        assert_eq!(defs[BINDING]["x-kubernetes-group-version-kind"][0]["kind"], "Binding");
        assert!(defs.contains_key(DELETE_OPTIONS) && defs.contains_key(STATUS) && defs.contains_key(PATCH));
    }

    #[test]
    fn refs_with_descriptions_are_wrapped_in_all_of() {
        let defs = core();
        let spec = &defs["io.k8s.api.core.v1.Service"]["properties"]["spec"];
        assert_eq!(spec["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.core.v1.ServiceSpec");
        assert!(spec["description"].as_str().is_some_and(|d| d.starts_with("Spec defines the behavior")));
        assert!(spec.get("$ref").is_none());
        // Every $ref in the document resolves.
        let text = serde_json::to_string(&defs).expect("serializes");
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(defs.contains_key(name), "dangling $ref {name}");
        }
    }

    #[test]
    fn int_or_string_and_quantity_are_kube_shaped() {
        let defs = core();
        let ios = &defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
        assert_eq!(ios["x-kubernetes-int-or-string"], true);
        assert!(ios.get("type").is_none(), "explain prints <IntOrString> only for a typeless schema");
        assert_eq!(defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["x-kubernetes-int-or-string"], true);
    }

    #[test]
    fn patch_strategies_follow_kubernetes() {
        let defs = core();
        let containers = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        let volumes = &defs["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        let ports = &defs["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "port");
        assert_eq!(ports["x-kubernetes-list-map-keys"], json!(["port", "protocol"]));
        let env = &defs["io.k8s.api.core.v1.Container"]["properties"]["env"];
        assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
        let owners = &defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["ownerReferences"];
        assert_eq!(owners["x-kubernetes-patch-merge-key"], "uid");
        let args = &defs["io.k8s.api.core.v1.Container"]["properties"]["args"];
        assert_eq!(args["x-kubernetes-list-type"], "atomic");
        assert!(args.get("x-kubernetes-patch-strategy").is_none());
    }

    #[test]
    fn field_descriptions_come_from_the_schemas() {
        let d = field_description("io.k8s.api.core.v1.ServiceSpec", "clusterIP").unwrap_or_default();
        assert!(d.starts_with("clusterIP is the IP address of the service"), "{d}");
        assert!(field_description("io.k8s.api.apps.v1.DeploymentStatus", "updatedReplicas").is_some());
        assert!(field_description("io.k8s.api.core.v1.ServiceSpec", "nosuchfield").is_none());
        let defs = core();
        assert_eq!(
            defs[WATCH_EVENT]["x-kubernetes-group-version-kind"][0],
            json!({"group": "", "kind": "WatchEvent", "version": "v1"})
        );
    }

    #[test]
    fn apps_strategy_retains_keys() {
        let rs: Vec<&'static ResourceInfo> = RESOURCES.iter().filter(|r| r.group == "apps").collect();
        let defs = components(&rs);
        let strategy = &defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
        assert_eq!(defs[DELETE_OPTIONS]["x-kubernetes-group-version-kind"][1]["group"], "apps");
    }
}
