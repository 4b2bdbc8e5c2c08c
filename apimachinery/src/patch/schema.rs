//! Patch schemas: for each field of a kind, its patch strategy and merge key.
//!
//! This is the information of the `patchStrategy` and `patchMergeKey` struct tags of
//! `k8s.io/api` (the `x-kubernetes-patch-strategy` / `-merge-key` of the OpenAPI spec),
//! for the kinds knet serves. Only the fields on the way to a tagged field are listed: a
//! field that is not listed merges like a JSON merge patch (objects merged, lists
//! replaced), which is what an untagged field does in Kubernetes too.

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

impl FieldPatchMeta {
    /// An untagged field whose value (or whose list elements) has the given schema.
    const fn nested(schema: &'static PatchSchema) -> Self {
        FieldPatchMeta { strategy: PatchStrategy::Default, retain_keys: false, merge_key: None, schema }
    }

    /// A list of objects merged by `key`.
    const fn merge_by(key: &'static str, schema: &'static PatchSchema) -> Self {
        FieldPatchMeta { strategy: PatchStrategy::Merge, retain_keys: false, merge_key: Some(key), schema }
    }

    /// `merge,retainKeys`, by `key`.
    const fn merge_retain_by(key: &'static str, schema: &'static PatchSchema) -> Self {
        FieldPatchMeta { strategy: PatchStrategy::Merge, retain_keys: true, merge_key: Some(key), schema }
    }

    /// A list of scalars merged as a set.
    const fn merge_set() -> Self {
        FieldPatchMeta { strategy: PatchStrategy::Merge, retain_keys: false, merge_key: None, schema: &EMPTY }
    }

    /// An object tagged `retainKeys` only.
    const fn retain_keys(schema: &'static PatchSchema) -> Self {
        FieldPatchMeta { strategy: PatchStrategy::Default, retain_keys: true, merge_key: None, schema }
    }
}

const UNTAGGED: FieldPatchMeta = FieldPatchMeta::nested(&EMPTY);

/// The patch metadata of the fields of one object type.
#[derive(Debug)]
pub struct PatchSchema {
    fields: &'static [(&'static str, FieldPatchMeta)],
}

impl PatchSchema {
    /// The metadata of a field; untagged (merge objects, replace lists) when not listed.
    pub fn field(&self, name: &str) -> FieldPatchMeta {
        self.fields.iter().find(|(n, _)| *n == name).map_or(UNTAGGED, |(_, m)| *m)
    }

    /// The schema with no tagged field: a strategic merge patch with it behaves like a
    /// JSON merge patch that also understands the `$` directives.
    pub fn empty() -> &'static PatchSchema {
        &EMPTY
    }
}

static EMPTY: PatchSchema = PatchSchema { fields: &[] };

static OBJECT_META: PatchSchema = PatchSchema {
    fields: &[
        ("finalizers", FieldPatchMeta::merge_set()),
        ("ownerReferences", FieldPatchMeta::merge_by("uid", &EMPTY)),
    ],
};

static CONTAINER: PatchSchema = PatchSchema {
    fields: &[
        ("ports", FieldPatchMeta::merge_by("containerPort", &EMPTY)),
        ("env", FieldPatchMeta::merge_by("name", &EMPTY)),
        ("volumeMounts", FieldPatchMeta::merge_by("mountPath", &EMPTY)),
        ("volumeDevices", FieldPatchMeta::merge_by("devicePath", &EMPTY)),
    ],
};

static POD_SPEC: PatchSchema = PatchSchema {
    fields: &[
        ("volumes", FieldPatchMeta::merge_retain_by("name", &EMPTY)),
        ("initContainers", FieldPatchMeta::merge_by("name", &CONTAINER)),
        ("containers", FieldPatchMeta::merge_by("name", &CONTAINER)),
        // EphemeralContainer inlines EphemeralContainerCommon, whose tags are Container's.
        ("ephemeralContainers", FieldPatchMeta::merge_by("name", &CONTAINER)),
        ("imagePullSecrets", FieldPatchMeta::merge_by("name", &EMPTY)),
        ("hostAliases", FieldPatchMeta::merge_by("ip", &EMPTY)),
        ("topologySpreadConstraints", FieldPatchMeta::merge_by("topologyKey", &EMPTY)),
        ("schedulingGates", FieldPatchMeta::merge_by("name", &EMPTY)),
        ("resourceClaims", FieldPatchMeta::merge_retain_by("name", &EMPTY)),
    ],
};

static POD_STATUS: PatchSchema = PatchSchema {
    fields: &[
        ("conditions", FieldPatchMeta::merge_by("type", &EMPTY)),
        ("hostIPs", FieldPatchMeta::merge_by("ip", &EMPTY)),
        ("podIPs", FieldPatchMeta::merge_by("ip", &EMPTY)),
        ("resourceClaimStatuses", FieldPatchMeta::merge_retain_by("name", &EMPTY)),
    ],
};

static POD: PatchSchema = PatchSchema {
    fields: &[
        ("metadata", FieldPatchMeta::nested(&OBJECT_META)),
        ("spec", FieldPatchMeta::nested(&POD_SPEC)),
        ("status", FieldPatchMeta::nested(&POD_STATUS)),
    ],
};

static POD_TEMPLATE_SPEC: PatchSchema = PatchSchema {
    fields: &[("metadata", FieldPatchMeta::nested(&OBJECT_META)), ("spec", FieldPatchMeta::nested(&POD_SPEC))],
};

/// `status` of the kinds whose only tagged status field is `conditions`, by `type`
/// (Service, Namespace, ReplicationController, Deployment, ReplicaSet).
static CONDITIONS_STATUS: PatchSchema =
    PatchSchema { fields: &[("conditions", FieldPatchMeta::merge_by("type", &EMPTY))] };

/// `spec` of the workload kinds: only the pod template has tagged fields.
static TEMPLATE_SPEC: PatchSchema = PatchSchema { fields: &[("template", FieldPatchMeta::nested(&POD_TEMPLATE_SPEC))] };

static WORKLOAD: PatchSchema = PatchSchema {
    fields: &[
        ("metadata", FieldPatchMeta::nested(&OBJECT_META)),
        ("spec", FieldPatchMeta::nested(&TEMPLATE_SPEC)),
        ("status", FieldPatchMeta::nested(&CONDITIONS_STATUS)),
    ],
};

static DEPLOYMENT_SPEC: PatchSchema = PatchSchema {
    fields: &[
        ("template", FieldPatchMeta::nested(&POD_TEMPLATE_SPEC)),
        ("strategy", FieldPatchMeta::retain_keys(&EMPTY)),
    ],
};

static DEPLOYMENT: PatchSchema = PatchSchema {
    fields: &[
        ("metadata", FieldPatchMeta::nested(&OBJECT_META)),
        ("spec", FieldPatchMeta::nested(&DEPLOYMENT_SPEC)),
        ("status", FieldPatchMeta::nested(&CONDITIONS_STATUS)),
    ],
};

static SERVICE: PatchSchema = PatchSchema {
    fields: &[
        ("metadata", FieldPatchMeta::nested(&OBJECT_META)),
        (
            "spec",
            FieldPatchMeta::nested(&PatchSchema { fields: &[("ports", FieldPatchMeta::merge_by("port", &EMPTY))] }),
        ),
        ("status", FieldPatchMeta::nested(&CONDITIONS_STATUS)),
    ],
};

static NODE: PatchSchema = PatchSchema {
    fields: &[
        ("metadata", FieldPatchMeta::nested(&OBJECT_META)),
        ("spec", FieldPatchMeta::nested(&PatchSchema { fields: &[("podCIDRs", FieldPatchMeta::merge_set())] })),
        (
            "status",
            FieldPatchMeta::nested(&PatchSchema {
                fields: &[
                    ("conditions", FieldPatchMeta::merge_by("type", &EMPTY)),
                    ("addresses", FieldPatchMeta::merge_by("type", &EMPTY)),
                ],
            }),
        ),
    ],
};

static NAMESPACE: PatchSchema = PatchSchema {
    fields: &[
        ("metadata", FieldPatchMeta::nested(&OBJECT_META)),
        ("status", FieldPatchMeta::nested(&CONDITIONS_STATUS)),
    ],
};

static SERVICE_ACCOUNT: PatchSchema = PatchSchema {
    fields: &[
        ("metadata", FieldPatchMeta::nested(&OBJECT_META)),
        ("secrets", FieldPatchMeta::merge_by("name", &EMPTY)),
    ],
};

/// Kinds whose only tagged fields are in `metadata`.
static METADATA_ONLY: PatchSchema = PatchSchema { fields: &[("metadata", FieldPatchMeta::nested(&OBJECT_META))] };

/// The patch schema of a kind knet serves, by `apiVersion` and `kind` (status and scale
/// subresources use their object's kind, `autoscaling/v1` `Scale` its own). `None` for
/// any other kind: kube-apiserver refuses strategic merge patches for kinds it has no
/// schema for (custom resources) with 415 Unsupported Media Type.
pub fn patch_schema(api_version: &str, kind: &str) -> Option<&'static PatchSchema> {
    Some(match (api_version, kind) {
        ("v1", "Pod") => &POD,
        ("v1", "Service") => &SERVICE,
        ("v1", "Node") => &NODE,
        ("v1", "Namespace") => &NAMESPACE,
        ("v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("v1", "ReplicationController") | ("apps/v1", "ReplicaSet") => &WORKLOAD,
        ("apps/v1", "Deployment") => &DEPLOYMENT,
        ("v1", "Endpoints" | "Secret" | "ConfigMap" | "Event")
        | ("discovery.k8s.io/v1", "EndpointSlice")
        | ("networking.k8s.io/v1", "NetworkPolicy" | "Ingress" | "IngressClass")
        | ("coordination.k8s.io/v1", "Lease")
        | ("autoscaling/v1", "Scale") => &METADATA_ONLY,
        _ => return None,
    })
}
