//! End-to-end checks of discovery, OpenAPI and Tables with the real kubectl.
//!
//! A small in-memory API server on 127.0.0.1 serves exactly what this crate's
//! [`discovery`](crate::discovery), [`openapi`](crate::openapi) and
//! [`tables`](crate::tables) produce, plus a map of objects, and records every request.
//! kubectl v1.34 (from `KNET_KUBECTL`, else `target/tools/kubectl`; the tests fail
//! without one) runs against it with default flags. The real HTTP layer, storage and
//! admission are elsewhere; this only shows what kubectl reads and sends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::discovery::{self, DiscoveryForm};
use crate::resources::{self, ResourceInfo};
use crate::{openapi, tables};

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    accept: String,
    content_type: String,
    body: String,
}

#[derive(Default)]
struct Server {
    objects: BTreeMap<String, Value>,
    seen: Vec<Seen>,
    rv: u64,
}

type Shared = Arc<Mutex<Server>>;

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    (status, [("content-type", content_type.to_string())], body).into_response()
}

fn json_reply(status: StatusCode, v: &Value) -> Response {
    reply(status, "application/json", serde_json::to_vec(v).unwrap_or_default())
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code});
    json_reply(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &body)
}

/// A resource path: the resource, namespace, name and subresource.
struct Target {
    res: &'static ResourceInfo,
    namespace: Option<String>,
    name: Option<String>,
}

fn parse_target(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] if !plural.is_empty() => {
            (Some(ns.to_string()), [&[*plural], rest].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let res = resources::find(group, version, rest.first()?)?;
    Some(Target { res, namespace, name: rest.get(1).map(|s| s.to_string()) })
}

fn key(res: &ResourceInfo, ns: Option<&str>, name: &str) -> String {
    format!("{}/{}/{}", res.qualified_plural(), ns.unwrap_or_default(), name)
}

/// A JSON merge of `patch` into `target`, skipping strategic-merge directives.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

async fn handle(State(st): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let path = uri.path().to_string();
    let seen = Seen {
        method: method.to_string(),
        path: path.clone(),
        query: uri.query().unwrap_or_default().to_string(),
        accept: header("accept"),
        content_type: header("content-type"),
        body: String::from_utf8_lossy(&body).to_string(),
    };
    let Ok(mut s) = st.lock() else { return status(500, "InternalError", "poisoned") };
    s.seen.push(seen.clone());
    let accept = seen.accept.as_str();
    match path.as_str() {
        "/version" => return json_reply(StatusCode::OK, &discovery::version_info()),
        "/api" | "/apis" => {
            let core = path == "/api";
            return match discovery::negotiate(Some(accept)) {
                Some(DiscoveryForm::Unaggregated) if core => {
                    json_reply(StatusCode::OK, &discovery::core_versions("127.0.0.1:6443"))
                }
                Some(DiscoveryForm::Unaggregated) => json_reply(StatusCode::OK, &discovery::group_list()),
                Some(form) => reply(
                    StatusCode::OK,
                    form.content_type(),
                    serde_json::to_vec(&discovery::aggregated_as(core, form)).unwrap_or_default(),
                ),
                None => status(406, "NotAcceptable", "not acceptable"),
            };
        }
        "/openapi/v3" => return json_reply(StatusCode::OK, &openapi::v3_root()),
        _ => {}
    }
    if let Some(doc) = path.strip_prefix("/openapi/v3/") {
        return match openapi::v3_document(doc) {
            Some(bytes) => reply(StatusCode::OK, "application/json", bytes.to_vec()),
            None => status(404, "NotFound", "no such document"),
        };
    }
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["api", v] => {
            return discovery::resource_list("", v)
                .map_or(status(404, "NotFound", "nf"), |l| json_reply(StatusCode::OK, &l))
        }
        ["apis", g] => {
            return discovery::group(g).map_or(status(404, "NotFound", "nf"), |l| json_reply(StatusCode::OK, &l))
        }
        ["apis", g, v] => {
            return discovery::resource_list(g, v)
                .map_or(status(404, "NotFound", "nf"), |l| json_reply(StatusCode::OK, &l))
        }
        _ => {}
    }
    let Some(t) = parse_target(&path) else {
        return status(404, "NotFound", "the server could not find the requested resource");
    };
    let wants_table = accept.contains("as=Table");
    let ns = t.namespace.as_deref().or(t.res.namespaced.then_some("default"));
    let qualified = t.res.qualified_plural();
    match (method.as_str(), &t.name) {
        ("GET", None) => {
            let prefix = match &t.namespace {
                Some(ns) => format!("{qualified}/{ns}/"),
                None => format!("{qualified}/"),
            };
            let items: Vec<Value> =
                s.objects.iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, v)| v.clone()).collect();
            let meta = json!({"resourceVersion": s.rv.to_string()});
            if wants_table {
                let include = tables::IncludeObject::parse(query_param(&seen.query, "includeObject").as_deref())
                    .unwrap_or_default();
                json_reply(StatusCode::OK, &tables::table(t.res, &items, meta, include, false))
            } else {
                json_reply(
                    StatusCode::OK,
                    &json!({"kind": t.res.list_kind, "apiVersion": t.res.api_version(), "metadata": meta, "items": items}),
                )
            }
        }
        ("GET", Some(name)) => match s.objects.get(&key(t.res, ns, name)) {
            Some(obj) if wants_table => {
                let meta =
                    json!({"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or_default()});
                json_reply(
                    StatusCode::OK,
                    &tables::table(t.res, std::slice::from_ref(obj), meta, tables::IncludeObject::Metadata, false),
                )
            }
            Some(obj) => json_reply(StatusCode::OK, obj),
            None => status(404, "NotFound", &format!("{qualified} \"{name}\" not found")),
        },
        ("POST", None) => {
            let Ok(mut obj) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "bad body");
            };
            s.rv += 1;
            let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
            let created = jiff::Timestamp::now().as_second() - 600;
            let meta = json!({
                "namespace": ns, "uid": format!("uid-{}", s.rv), "resourceVersion": s.rv.to_string(),
                "creationTimestamp": jiff::Timestamp::from_second(created).map(|t| t.to_string()).unwrap_or_default(),
            });
            merge(&mut obj, &json!({"metadata": meta}));
            if t.res.plural == "services" {
                merge(
                    &mut obj,
                    &json!({"spec": {"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"]}}),
                );
            }
            s.objects.insert(key(t.res, ns, &name), obj.clone());
            json_reply(StatusCode::CREATED, &obj)
        }
        ("PATCH", Some(name)) => {
            let k = key(t.res, ns, name);
            let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
                return status(400, "BadRequest", "bad patch");
            };
            s.rv += 1;
            let rv = s.rv.to_string();
            let Some(obj) = s.objects.get_mut(&k) else { return status(404, "NotFound", "not found") };
            merge(obj, &patch);
            merge(obj, &json!({"metadata": {"resourceVersion": rv}}));
            let obj = obj.clone();
            json_reply(StatusCode::OK, &obj)
        }
        ("DELETE", Some(name)) => match s.objects.remove(&key(t.res, ns, name)) {
            Some(obj) => json_reply(StatusCode::OK, &obj),
            None => status(404, "NotFound", "not found"),
        },
        _ => status(405, "MethodNotAllowed", "method not allowed"),
    }
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(String::from))
}

/// The kubectl v1.34 to test with: `$KNET_KUBECTL`, else the one `scripts/install-kubectl.sh`
/// puts in the workspace's `target/tools/` (never an older `kubectl` from `PATH`).
fn kubectl_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KNET_KUBECTL").map(PathBuf::from).filter(|p| p.exists()) {
        return Some(p);
    }
    Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/kubectl")).filter(|p| p.exists())
}

/// A running test server and a kubectl configured for it.
struct Harness {
    state: Shared,
    kubectl: PathBuf,
    dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

impl Harness {
    fn start() -> Option<Harness> {
        // A missing kubectl fails the test: it must never pass by skipping.
        let kubectl = kubectl_binary()
            .expect("no kubectl v1.34: run scripts/install-kubectl.sh (target/tools/kubectl) or set KNET_KUBECTL");
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().ok()?;
        let state: Shared = Arc::default();
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).ok()?;
        let port = listener.local_addr().ok()?.port();
        rt.spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().ok()?;
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: knet\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: knet\n  context:\n    cluster: knet\n    user: admin\n    namespace: default\nusers:\n- name: admin\n  user: {{}}\ncurrent-context: knet\n"
        );
        std::fs::write(dir.path().join("config"), config).ok()?;
        Some(Harness { state, kubectl, dir, _rt: rt })
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(&self.kubectl)
            .args(args)
            .arg(format!("--kubeconfig={}", self.dir.path().join("config").display()))
            .arg(format!("--cache-dir={}", self.dir.path().join("cache").display()))
            .arg("--request-timeout=20s")
            .env("HOME", self.dir.path())
            .output();
        match out {
            Ok(o) => (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into(),
                String::from_utf8_lossy(&o.stderr).into(),
            ),
            Err(e) => (false, String::new(), e.to_string()),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "kubectl {args:?} failed:\n{out}\n{err}");
        out
    }

    fn file(&self, name: &str, text: &str) -> String {
        let p: &Path = self.dir.path();
        let path = p.join(name);
        let _ = std::fs::write(&path, text);
        path.display().to_string()
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().map(|s| s.seen.clone()).unwrap_or_default()
    }

    fn clear_seen(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.seen.clear();
        }
    }
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: my-nginx
  labels:
    run: my-nginx
spec:
  ports:
  - port: 80
    protocol: TCP
  selector:
    run: my-nginx
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-nginx
spec:
  selector:
    matchLabels:
      run: my-nginx
  replicas: 2
  template:
    metadata:
      labels:
        run: my-nginx
    spec:
      containers:
      - name: my-nginx
        image: nginx
        ports:
        - containerPort: 80
      - name: sidecar
        image: busybox
";

/// Columns of a kubectl table line.
fn fields(line: &str) -> Vec<&str> {
    line.split("  ").map(str::trim).filter(|s| !s.is_empty()).collect()
}

#[test]
fn kubectl_discovers_resources_through_aggregated_discovery() {
    let h = Harness::start().expect("starting the kubectl test harness");
    let out = h.ok(&["api-resources"]);
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
    };
    assert_eq!(line("services"), Some(vec!["services", "svc", "v1", "true", "Service"]));
    assert_eq!(line("deployments"), Some(vec!["deployments", "deploy", "apps/v1", "true", "Deployment"]));
    assert_eq!(line("endpointslices"), Some(vec!["endpointslices", "discovery.k8s.io/v1", "true", "EndpointSlice"]));
    assert_eq!(line("nodes"), Some(vec!["nodes", "no", "v1", "false", "Node"]));
    let seen = h.seen();
    assert!(seen.iter().any(|s| s.path == "/api" && s.accept.contains("g=apidiscovery.k8s.io;v=v2")), "{seen:?}");
    assert!(
        !seen.iter().any(|s| s.path == "/api/v1"),
        "aggregated discovery made per-group-version requests unnecessary"
    );
    let all = h.ok(&["api-resources", "--categories=all", "-o", "name"]);
    let mut all: Vec<&str> = all.lines().collect();
    all.sort_unstable();
    assert_eq!(all, ["deployments.apps", "pods", "replicasets.apps", "replicationcontrollers", "services"]);
}

#[test]
fn kubectl_explain_prints_field_docs() {
    let h = Harness::start().expect("starting the kubectl test harness");
    let out = h.ok(&["explain", "service.spec.ports"]);
    assert!(out.starts_with("KIND:       Service\nVERSION:    v1\n"), "{out}");
    assert!(out.contains("FIELD: ports <[]ServicePort>"), "{out}");
    assert!(out.contains("The list of ports that are exposed by this service."), "{out}");
    assert!(out.contains("ServicePort contains information on service's port."), "{out}");
    assert!(out.contains("  targetPort\t<IntOrString>"), "{out}");
    assert!(out.contains("  port\t<integer> -required-"), "{out}");
    let pods = h.ok(&["explain", "pods"]);
    assert!(pods.contains("KIND:       Pod\nVERSION:    v1"), "{pods}");
    assert!(pods.contains("  metadata\t<ObjectMeta>\n"), "metadata is not marked required: {pods}");
    assert!(pods.contains("  spec\t<PodSpec>"), "{pods}");
    let deploy = h.ok(&["explain", "deploy.spec.template.spec.containers.ports"]);
    assert!(deploy.starts_with("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1"), "{deploy}");
    assert!(deploy.contains("containerPort\t<integer> -required-"), "{deploy}");
    let (ok, _, err) = h.run(&["explain", "service.spec.nosuchfield"]);
    assert!(!ok && err.contains("field \"nosuchfield\" does not exist"), "{err}");
}

#[test]
fn kubectl_apply_uses_server_side_validation_and_strategic_merge() {
    let h = Harness::start().expect("starting the kubectl test harness");
    let svc = h.file("svc.yaml", SERVICE);
    let out = h.ok(&["apply", "-f", &svc]);
    assert_eq!(out.trim(), "service/my-nginx created");
    let seen = h.seen();
    let post = seen.iter().find(|s| s.method == "POST").expect("created with POST");
    assert!(post.query.contains("fieldValidation=Strict"), "kubectl left validation to the server: {}", post.query);
    assert!(!seen.iter().any(|s| s.path == "/openapi/v2"), "no fallback to OpenAPI v2");

    let deploy = h.file("deploy.yaml", DEPLOYMENT);
    assert_eq!(h.ok(&["apply", "-f", &deploy]).trim(), "deployment.apps/my-nginx created");
    h.clear_seen();
    let edited =
        DEPLOYMENT.replace("replicas: 2", "replicas: 3").replace("      - name: sidecar\n        image: busybox\n", "");
    let deploy = h.file("deploy.yaml", &edited);
    assert_eq!(h.ok(&["apply", "-f", &deploy]).trim(), "deployment.apps/my-nginx configured");
    let seen = h.seen();
    let patch = seen.iter().find(|s| s.method == "PATCH").expect("re-apply patches");
    assert_eq!(patch.content_type, "application/strategic-merge-patch+json");
    assert!(patch.query.contains("fieldValidation=Strict"), "{}", patch.query);
    let body: Value = serde_json::from_str(&patch.body).expect("JSON patch body");
    // Merge keys from the OpenAPI document: containers merge by name, so removing one
    // is a $patch: delete directive and the order is kept with $setElementOrder.
    let spec = &body["spec"]["template"]["spec"];
    assert_eq!(spec["$setElementOrder/containers"], json!([{"name": "my-nginx"}]), "{body}");
    assert_eq!(spec["containers"], json!([{"$patch": "delete", "name": "sidecar"}]), "{body}");
    assert_eq!(body["spec"]["replicas"], 3);
    assert!(!seen.iter().any(|s| s.path == "/openapi/v2"), "no fallback to OpenAPI v2");
    assert_eq!(h.ok(&["apply", "-f", &svc]).trim(), "service/my-nginx unchanged");
}

#[test]
fn kubectl_get_prints_server_side_tables() {
    let h = Harness::start().expect("starting the kubectl test harness");
    h.ok(&["apply", "-f", &h.file("svc.yaml", SERVICE)]);
    h.ok(&["apply", "-f", &h.file("deploy.yaml", DEPLOYMENT)]);
    let out = h.ok(&["get", "svc"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(fields(lines[0]), ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]);
    assert_eq!(fields(lines[1]), ["my-nginx", "ClusterIP", "10.96.0.12", "<none>", "80/TCP", "10m"]);
    let wide = h.ok(&["get", "svc", "-o", "wide"]);
    let lines: Vec<&str> = wide.lines().collect();
    assert_eq!(fields(lines[0]), ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]);
    assert_eq!(fields(lines[1]).last(), Some(&"run=my-nginx"));
    let deploy = h.ok(&["get", "deploy", "-o", "wide"]);
    let lines: Vec<&str> = deploy.lines().collect();
    assert_eq!(
        fields(lines[0]),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    );
    assert_eq!(
        fields(lines[1]),
        ["my-nginx", "0/2", "0", "0", "10m", "my-nginx,sidecar", "nginx,busybox", "run=my-nginx"]
    );
    let all = h.ok(&["get", "all"]);
    assert!(all.contains("service/my-nginx"), "{all}");
    assert!(all.contains("deployment.apps/my-nginx"), "{all}");
    let (ok, out, err) = h.run(&["get", "pods"]);
    assert!(ok, "{err}");
    assert!(out.is_empty() && err.contains("No resources found in default namespace."), "{out}{err}");
    let seen = h.seen();
    assert!(seen.iter().any(|s| s.path == "/api/v1/namespaces/default/services" && s.accept.contains("as=Table")));
    let named = h.ok(&["get", "svc", "my-nginx", "--no-headers"]);
    assert_eq!(fields(named.trim()), ["my-nginx", "ClusterIP", "10.96.0.12", "<none>", "80/TCP", "10m"]);
}
