//! `paths` of a group-version's OpenAPI v3 document: one operation per REST verb of
//! every resource and subresource, with the query parameters kube-apiserver documents.
//!
//! kubectl reads these. `kubectl explain` finds a resource's GVK from the
//! `x-kubernetes-group-version-kind` of its path's operations; `kubectl apply` (default
//! `--validate=strict`) uses server-side field validation only when the PATCH operation
//! of the kind lists a `fieldValidation` query parameter, and computes a strategic merge
//! patch from the document only when that operation accepts
//! `application/strategic-merge-patch+json`.

use serde_json::{json, Map, Value};

use super::schemas::{
    kind_schema_name, list_schema_name, schema_ref, BINDING, DELETE_OPTIONS, PATCH, SCALE, STATUS, TOKEN_REQUEST,
};
use crate::resources::ResourceInfo;

/// `/api/v1` or `/apis/{group}/{version}`.
pub(crate) fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// `CoreV1`, `AppsV1`, `NetworkingV1`, … as kube-apiserver's operation IDs spell groups.
fn op_group(res: &ResourceInfo) -> String {
    let group = if res.group.is_empty() { "core" } else { res.group.trim_end_matches(".k8s.io") };
    let mut out: String = group.split(['.', '-']).map(capitalize).collect();
    out.push_str(&capitalize(res.version));
    out
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `core_v1`, `apps_v1`, `networking_v1`: the operation tag.
fn tag(res: &ResourceInfo) -> String {
    let group = if res.group.is_empty() { "core" } else { res.group.trim_end_matches(".k8s.io") };
    format!("{}_{}", group.replace(['.', '-'], "_"), res.version)
}

fn param(name: &str, location: &str, description: &str, schema: Value, required: bool) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description, "schema": schema});
    if required {
        p["required"] = json!(true);
    }
    p
}

fn query(name: &str, description: &str, kind: &str) -> Value {
    param(name, "query", description, json!({"type": kind}), false)
}

fn pretty() -> Value {
    query("pretty", "If 'true', then the output is pretty printed.", "string")
}

fn dry_run() -> Value {
    query(
        "dryRun",
        "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        "string",
    )
}

fn field_manager() -> Value {
    query(
        "fieldManager",
        "fieldManager is a name associated with the actor or entity that is making these changes.",
        "string",
    )
}

/// The parameter whose presence tells kubectl the server validates fields itself.
fn field_validation() -> Value {
    query(
        "fieldValidation",
        "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: drops unknown fields and keeps the last of duplicate fields. - Warn: does the same and answers with a warning for each unknown and duplicate field. - Strict: fails the request with a BadRequest error naming every unknown and duplicate field. Strict is the default.",
        "string",
    )
}

fn write_params() -> Vec<Value> {
    vec![dry_run(), field_manager(), field_validation()]
}

fn list_params(watch: bool) -> Vec<Value> {
    let mut out = vec![];
    if watch {
        out.push(query("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers may send them at their discretion.", "boolean"));
    }
    out.push(query("continue", "The continue option should be set when retrieving more results from the server: the value of the previous list's metadata.continue.", "string"));
    out.push(query(
        "fieldSelector",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        "string",
    ));
    out.push(query(
        "labelSelector",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        "string",
    ));
    out.push(query("limit", "limit is a maximum number of responses to return for a list call; the rest can be had with the returned continue token.", "integer"));
    out.push(query(
        "resourceVersion",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
        "string",
    ));
    out.push(query(
        "resourceVersionMatch",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
        "string",
    ));
    out.push(query("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`: the stream begins with synthetic ADDED events for the current state.", "boolean"));
    out.push(query("timeoutSeconds", "Timeout for the list/watch call, whatever the activity.", "integer"));
    if watch {
        out.push(query("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.", "boolean"));
    }
    out
}

fn delete_params() -> Vec<Value> {
    vec![
        dry_run(),
        query("gracePeriodSeconds", "The duration in seconds before the object should be deleted. Zero means delete immediately.", "integer"),
        query("ignoreStoreReadErrorWithClusterBreakingPotential", "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.", "boolean"),
        query("orphanDependents", "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.", "boolean"),
        query("propagationPolicy", "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.", "string"),
    ]
}

fn content(schema: &Value, types: &[&str]) -> Value {
    let mut m = Map::new();
    for t in types {
        m.insert((*t).into(), json!({"schema": schema}));
    }
    Value::Object(m)
}

const RESPONSE_TYPES: &[&str] = &["application/json", "application/yaml"];
const LIST_RESPONSE_TYPES: &[&str] = &["application/json", "application/yaml", "application/json;stream=watch"];
const PATCH_TYPES: &[&str] =
    &["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"];

fn responses(codes: &[(&str, &str)], schema: &Value, types: &[&str]) -> Value {
    let mut m = Map::new();
    for (code, description) in codes {
        m.insert((*code).into(), json!({"description": description, "content": content(schema, types)}));
    }
    m.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(m)
}

/// What one operation is: its verb, wording, body and answer.
struct Op<'a> {
    id: String,
    description: String,
    action: &'a str,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
    gvk: Value,
}

impl Op<'_> {
    fn into_value(self, res: &ResourceInfo) -> Value {
        let mut m = Map::new();
        m.insert("tags".into(), json!([tag(res)]));
        m.insert("description".into(), json!(self.description));
        m.insert("operationId".into(), json!(self.id));
        if !self.params.is_empty() {
            m.insert("parameters".into(), Value::Array(self.params));
        }
        if let Some(body) = self.body {
            m.insert("requestBody".into(), body);
        }
        m.insert("responses".into(), self.responses);
        m.insert("x-kubernetes-action".into(), json!(self.action));
        m.insert("x-kubernetes-group-version-kind".into(), self.gvk);
        Value::Object(m)
    }
}

fn body(schema: &Value, types: &[&str]) -> Value {
    json!({"content": content(schema, types), "required": true})
}

/// The paths of one resource, in document order.
pub(super) fn resource_paths(res: &ResourceInfo) -> Vec<(String, Value)> {
    let (Some(kind_name), Some(list_name)) = (kind_schema_name(res), list_schema_name(res)) else {
        return Vec::new();
    };
    let obj = schema_ref(&kind_name);
    let list = schema_ref(&list_name);
    let status = schema_ref(STATUS);
    let gvk = json!({"group": res.group, "kind": res.kind, "version": res.version});
    let base = prefix(res.group, res.version);
    let g = op_group(res);
    let k = res.kind;
    let ns = if res.namespaced { "Namespaced" } else { "" };
    let collection = if res.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", res.plural)
    } else {
        format!("{base}/{}", res.plural)
    };
    let namespace_param = param(
        "namespace",
        "path",
        "object name and auth scope, such as for teams and projects",
        json!({"type": "string"}),
        true,
    );
    let name_param =
        |what: &str| param("name", "path", &format!("name of the {what}"), json!({"type": "string"}), true);
    let scope_params = |extra: Vec<Value>| -> Value {
        let mut ps = extra;
        if res.namespaced {
            ps.push(namespace_param.clone());
        }
        ps.push(pretty());
        Value::Array(ps)
    };
    let mut out = Vec::new();

    // GET of the collection, in one namespace or (`id` …ForAllNamespaces) in all.
    let list_op = |id: String| {
        let responses = responses(&[("200", "OK")], &list, LIST_RESPONSE_TYPES);
        let description = format!("list or watch objects of kind {k}");
        Op { id, description, action: "list", params: list_params(true), body: None, responses, gvk: gvk.clone() }
            .into_value(res)
    };
    if res.namespaced {
        let op = list_op(format!("list{g}{k}ForAllNamespaces"));
        out.push((format!("{base}/{}", res.plural), json!({"get": op, "parameters": [pretty()]})));
    }

    let mut item = Map::new();
    item.insert("get".into(), list_op(format!("list{g}{ns}{k}")));
    let create = Op {
        id: format!("create{g}{ns}{k}"),
        description: format!("create a {k}"),
        action: "post",
        params: write_params(),
        body: Some(body(&obj, &["*/*"])),
        responses: responses(&[("200", "OK"), ("201", "Created"), ("202", "Accepted")], &obj, RESPONSE_TYPES),
        gvk: gvk.clone(),
    };
    item.insert("post".into(), create.into_value(res));
    let mut dc_params = delete_params();
    dc_params.extend(list_params(false));
    let delete_collection = Op {
        id: format!("delete{g}Collection{ns}{k}"),
        description: format!("delete collection of {k}"),
        action: "deletecollection",
        params: dc_params,
        body: Some(body(&schema_ref(DELETE_OPTIONS), &["*/*"])),
        responses: responses(&[("200", "OK")], &status, RESPONSE_TYPES),
        gvk: gvk.clone(),
    };
    item.insert("delete".into(), delete_collection.into_value(res));
    item.insert("parameters".into(), scope_params(vec![]));
    out.push((collection.clone(), Value::Object(item)));

    let mut one = Map::new();
    one.insert("get".into(), read_op(res, format!("read{g}{ns}{k}"), format!("read the specified {k}"), &obj, &gvk));
    let replace = replace_op(res, format!("replace{g}{ns}{k}"), format!("replace the specified {k}"), &obj, &gvk);
    one.insert("put".into(), replace);
    let delete = Op {
        id: format!("delete{g}{ns}{k}"),
        description: format!("delete a {k}"),
        action: "delete",
        params: delete_params(),
        body: Some(body(&schema_ref(DELETE_OPTIONS), &["*/*"])),
        responses: responses(&[("200", "OK"), ("202", "Accepted")], &status, RESPONSE_TYPES),
        gvk: gvk.clone(),
    };
    one.insert("delete".into(), delete.into_value(res));
    one.insert(
        "patch".into(),
        patch_op(res, format!("patch{g}{ns}{k}"), format!("partially update the specified {k}"), &obj, gvk.clone()),
    );
    one.insert("parameters".into(), scope_params(vec![name_param(k)]));
    out.push((format!("{collection}/{{name}}"), Value::Object(one)));

    let mut subs: Vec<&str> = res.subresources.to_vec();
    subs.sort_unstable();
    for sub in subs {
        let (sub_obj, sub_gvk, sub_kind) = match sub {
            "scale" => (schema_ref(SCALE), json!({"group": "autoscaling", "kind": "Scale", "version": "v1"}), "Scale"),
            "binding" => (schema_ref(BINDING), json!({"group": "", "kind": "Binding", "version": "v1"}), "Binding"),
            "token" => (
                schema_ref(TOKEN_REQUEST),
                json!({"group": "authentication.k8s.io", "kind": "TokenRequest", "version": "v1"}),
                "TokenRequest",
            ),
            _ => (obj.clone(), gvk.clone(), k),
        };
        let cap = capitalize(sub);
        let mut m = Map::new();
        match sub {
            "exec" | "attach" | "portforward" => {
                // Connect operations: the answer is the stream, not an object.
                let options = match sub {
                    "exec" => "PodExecOptions",
                    "attach" => "PodAttachOptions",
                    _ => "PodPortForwardOptions",
                };
                let opts_gvk = json!({"group": "", "kind": options, "version": "v1"});
                for (verb, method) in [("get", "Get"), ("post", "Post")] {
                    let op = Op {
                        id: format!("connect{g}{method}{ns}{k}{cap}"),
                        description: format!("connect {method} requests to {sub} of {k}"),
                        action: "connect",
                        params: connect_params(sub),
                        body: None,
                        responses: responses(&[("200", "OK")], &json!({"type": "string"}), &["*/*"]),
                        gvk: opts_gvk.clone(),
                    };
                    m.insert(verb.into(), op.into_value(res));
                }
                m.insert("parameters".into(), scope_params(vec![name_param(options)]));
                out.push((format!("{collection}/{{name}}/{sub}"), Value::Object(m)));
                continue;
            }
            "log" => {
                let op = Op {
                    id: format!("read{g}{ns}{k}Log"),
                    description: format!("read log of the specified {k}"),
                    action: "get",
                    params: connect_params(sub),
                    body: None,
                    responses: responses(
                        &[("200", "OK")],
                        &json!({"type": "string"}),
                        &["text/plain", "application/json", "application/yaml"],
                    ),
                    gvk: gvk.clone(),
                };
                m.insert("get".into(), op.into_value(res));
            }
            // Created, never read: the Binding of a pod, the TokenRequest of a ServiceAccount.
            "binding" | "token" => {
                let op = Op {
                    id: format!("create{g}{ns}{k}{cap}"),
                    description: format!("create {sub} of a {k}"),
                    action: "post",
                    params: write_params(),
                    body: Some(body(&sub_obj, &["*/*"])),
                    responses: responses(
                        &[("200", "OK"), ("201", "Created"), ("202", "Accepted")],
                        &sub_obj,
                        RESPONSE_TYPES,
                    ),
                    gvk: sub_gvk,
                };
                m.insert("post".into(), op.into_value(res));
            }
            _ => {
                // `status` and `scale` are read, replaced and patched; a namespace's `finalize` only replaced.
                let (id, description) = (format!("{k}{cap}"), format!("{sub} of the specified {k}"));
                let whole = sub != "finalize";
                if whole {
                    let read =
                        read_op(res, format!("read{g}{ns}{id}"), format!("read {description}"), &sub_obj, &sub_gvk);
                    m.insert("get".into(), read);
                }
                let replace = replace_op(
                    res,
                    format!("replace{g}{ns}{id}"),
                    format!("replace {description}"),
                    &sub_obj,
                    &sub_gvk,
                );
                m.insert("put".into(), replace);
                if whole {
                    let description = format!("partially update {description}");
                    m.insert(
                        "patch".into(),
                        patch_op(res, format!("patch{g}{ns}{id}"), description, &sub_obj, sub_gvk),
                    );
                }
            }
        }
        m.insert("parameters".into(), scope_params(vec![name_param(sub_kind)]));
        out.push((format!("{collection}/{{name}}/{sub}"), Value::Object(m)));
    }
    out
}

/// The query parameters of the pod connect subresources and of `log`, as kube-apiserver documents them.
fn connect_params(sub: &str) -> Vec<Value> {
    let b = |n: &str, d: &str| query(n, d, "boolean");
    let container = query("container", "The container in which to execute the command. Defaults to only container if there is only one container in the pod.", "string");
    match sub {
        "exec" => vec![
            query("command", "Command is the remote command to execute. argv array. Not executed within a shell.", "string"),
            container,
            b("stderr", "Redirect the standard error stream of the pod for this call."),
            b("stdin", "Redirect the standard input stream of the pod for this call. Defaults to false."),
            b("stdout", "Redirect the standard output stream of the pod for this call."),
            b("tty", "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false."),
        ],
        "attach" => vec![
            container,
            b("stderr", "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true."),
            b("stdin", "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false."),
            b("stdout", "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true."),
            b("tty", "TTY if true indicates that a tty will be allocated for the attach call."),
        ],
        "portforward" => vec![query("ports", "List of ports to forward. Required when using WebSockets", "integer")],
        _ => vec![
            query("container", "The container for which to stream logs. Defaults to only container if there is one container in the pod.", "string"),
            b("follow", "Follow the log stream of the pod. Defaults to false."),
            b("insecureSkipTLSVerifyBackend", "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to."),
            query("limitBytes", "If set, the number of bytes to read from the server before terminating the log output.", "integer"),
            b("previous", "Return previous terminated container logs. Defaults to false."),
            query("sinceSeconds", "A relative time in seconds before the current time from which to show logs.", "integer"),
            query("sinceTime", "An RFC3339 timestamp from which to show logs.", "string"),
            query("stream", "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\".", "string"),
            query("tailLines", "If set, the number of lines from the end of the logs to show.", "integer"),
            b("timestamps", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false."),
        ],
    }
}

/// GET of one object (or of one of its subresources).
fn read_op(res: &ResourceInfo, id: String, description: String, answer: &Value, gvk: &Value) -> Value {
    let responses = responses(&[("200", "OK")], answer, RESPONSE_TYPES);
    Op { id, description, action: "get", params: vec![], body: None, responses, gvk: gvk.clone() }.into_value(res)
}

/// PUT of one object (or of one of its subresources).
fn replace_op(res: &ResourceInfo, id: String, description: String, obj: &Value, gvk: &Value) -> Value {
    Op {
        id,
        description,
        action: "put",
        params: write_params(),
        body: Some(body(obj, &["*/*"])),
        responses: responses(&[("200", "OK"), ("201", "Created")], obj, RESPONSE_TYPES),
        gvk: gvk.clone(),
    }
    .into_value(res)
}

fn patch_op(res: &ResourceInfo, id: String, description: String, answer: &Value, gvk: Value) -> Value {
    let mut params = write_params();
    params.push(query(
        "force",
        "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.",
        "boolean",
    ));
    Op {
        id,
        description,
        action: "patch",
        params,
        body: Some(body(&schema_ref(PATCH), PATCH_TYPES)),
        responses: responses(&[("200", "OK"), ("201", "Created")], answer, RESPONSE_TYPES),
        gvk,
    }
    .into_value(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    fn paths(group: &str, plural: &str) -> Map<String, Value> {
        let res = find(group, "v1", plural).expect("served");
        resource_paths(res).into_iter().collect()
    }

    #[test]
    fn namespaced_resource_has_every_operation() {
        let p = paths("", "services");
        let keys: Vec<&str> = p.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "/api/v1/services",
                "/api/v1/namespaces/{namespace}/services",
                "/api/v1/namespaces/{namespace}/services/{name}",
                "/api/v1/namespaces/{namespace}/services/{name}/status",
            ]
        );
        let one = &p["/api/v1/namespaces/{namespace}/services/{name}"];
        for verb in ["get", "put", "patch", "delete"] {
            assert_eq!(
                one[verb]["x-kubernetes-group-version-kind"],
                json!({"group": "", "kind": "Service", "version": "v1"})
            );
        }
        assert_eq!(one["get"]["operationId"], "readCoreV1NamespacedService");
        assert_eq!(p["/api/v1/services"]["get"]["operationId"], "listCoreV1ServiceForAllNamespaces");
        assert_eq!(
            p["/api/v1/namespaces/{namespace}/services"]["delete"]["operationId"],
            "deleteCoreV1CollectionNamespacedService"
        );
        assert_eq!(p["/api/v1/namespaces/{namespace}/services"]["post"]["x-kubernetes-action"], "post");
    }

    #[test]
    fn every_patch_operation_validates_fields_and_takes_strategic_merge() {
        for (group, plural) in
            [("", "services"), ("apps", "deployments"), ("networking.k8s.io", "networkpolicies"), ("", "nodes")]
        {
            for (path, item) in paths(group, plural) {
                let Some(patch) = item.get("patch") else { continue };
                let params = patch["parameters"].as_array().expect("params");
                assert!(
                    params.iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
                    "{path} PATCH lacks fieldValidation"
                );
                assert!(patch["requestBody"]["content"].get("application/strategic-merge-patch+json").is_some());
            }
        }
    }

    #[test]
    fn subresources_answer_with_their_kinds() {
        let p = paths("apps", "deployments");
        let scale = &p["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(scale["get"]["x-kubernetes-group-version-kind"]["kind"], "Scale");
        assert_eq!(scale["patch"]["operationId"], "patchAppsV1NamespacedDeploymentScale");
        let p = paths("", "pods");
        let binding = &p["/api/v1/namespaces/{namespace}/pods/{name}/binding"];
        assert_eq!(binding["post"]["x-kubernetes-group-version-kind"]["kind"], "Binding");
        let p = paths("", "namespaces");
        assert!(p.contains_key("/api/v1/namespaces"));
        assert!(p["/api/v1/namespaces/{name}/finalize"].get("put").is_some());
        assert_eq!(p["/api/v1/namespaces/{name}"]["get"]["operationId"], "readCoreV1Namespace");
        let params = p["/api/v1/namespaces/{name}"]["parameters"].as_array().expect("params");
        assert!(params.iter().all(|q| q["name"] != "namespace"), "cluster-scoped paths take no namespace");
    }

    #[test]
    fn operation_ids_spell_groups_like_kube() {
        assert_eq!(
            paths("networking.k8s.io", "ingresses")["/apis/networking.k8s.io/v1/ingresses"]["get"]["operationId"],
            "listNetworkingV1IngressForAllNamespaces"
        );
        assert_eq!(
            paths("discovery.k8s.io", "endpointslices")["/apis/discovery.k8s.io/v1/endpointslices"]["get"]["tags"],
            json!(["discovery_v1"])
        );
    }
}
