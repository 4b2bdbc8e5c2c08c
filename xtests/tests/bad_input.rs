//! Bad input over raw HTTPS, with the admin's bearer token: malformed JSON and YAML, bodies of the wrong kind
//! or apiVersion, bodies over 3 MiB, invalid names, bad label and field selectors, bad patches, wrong content
//! types, unknown resources and unknown fields. Every answer must be the 4xx `Status` kube-apiserver gives
//! (code, reason, a message that says what is wrong), never a 5xx, and the server must keep serving: each
//! request is followed by `GET /readyz`. A property test throws random bodies at the decoding paths.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use xtests::ApiServer;

/// kube-apiserver's limit on request bodies.
const MAX_BODY: usize = 3 * 1024 * 1024;
const SERVICES: &str = "/api/v1/namespaces/default/services";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

/// A raw HTTPS client of one test server.
struct Client {
    api: ApiServer,
    http: reqwest::Client,
    token: String,
}

/// What the server answered.
#[derive(Debug)]
struct Answer {
    what: String,
    code: u16,
    headers: HeaderMap,
    body: Value,
    raw: String,
}

impl Client {
    async fn start() -> Result<Client> {
        let api = ApiServer::start().await?;
        let http = api.http()?;
        let token = api.admin_token()?;
        Ok(Client { api, http, token })
    }

    /// Sends a request, then checks that the answer is no 5xx and that the server still answers `/readyz`.
    async fn send(&self, method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Result<Answer> {
        let what = format!("{method} {path} ({} bytes of {})", body.len(), content_type.unwrap_or("no content type"));
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.api.url()))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30));
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        let resp = req.body(body).send().await.with_context(|| format!("{what}: no answer"))?;
        let code = resp.status().as_u16();
        let headers = resp.headers().clone();
        let raw = resp.text().await.with_context(|| format!("{what}: reading the answer"))?;
        ensure!(code < 500, "{what} answered {code}: {raw}");
        self.ready().await.with_context(|| format!("after {what}"))?;
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Ok(Answer { what, code, headers, body, raw })
    }

    /// `GET /readyz` answers 200 `ok`.
    async fn ready(&self) -> Result<()> {
        let resp = self.http.get(format!("{}/readyz", self.api.url())).timeout(Duration::from_secs(10)).send().await?;
        let code = resp.status().as_u16();
        let text = resp.text().await?;
        ensure!(code == 200 && text.trim() == "ok", "/readyz answered {code}: {text}");
        Ok(())
    }

    async fn get(&self, path: &str) -> Result<Answer> {
        self.send(Method::GET, path, None, Vec::new()).await
    }

    async fn post(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Result<Answer> {
        self.send(Method::POST, path, Some(content_type), body.into()).await
    }

    async fn put(&self, path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Result<Answer> {
        self.send(Method::PUT, path, Some(content_type), body.into()).await
    }

    async fn patch(&self, path: &str, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Result<Answer> {
        self.send(Method::PATCH, path, content_type, body.into()).await
    }
}

impl Answer {
    /// Checks that this is a failure `Status` with `code` and `reason` whose message has all of `fragments`;
    /// returns the Status.
    fn failure(&self, code: u16, reason: &str, fragments: &[&str]) -> Result<&Value> {
        let what = &self.what;
        ensure!(self.code == code, "{what}: expected {code} {reason}, got {}: {}", self.code, self.raw);
        let ct = self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        ensure!(ct.starts_with(JSON), "{what}: a Status is JSON, got {ct:?}");
        let s = &self.body;
        ensure!(
            s["kind"] == "Status" && s["apiVersion"] == "v1" && s["status"] == "Failure",
            "{what}: not a failure Status: {}",
            self.raw
        );
        ensure!(s["code"] == code && s["reason"] == reason, "{what}: expected {code} {reason} in {}", self.raw);
        let message = s["message"].as_str().unwrap_or("");
        ensure!(!message.trim().is_empty(), "{what}: the Status has no message: {}", self.raw);
        for f in fragments {
            ensure!(message.contains(f), "{what}: the message does not say {f:?}: {message:?}");
        }
        Ok(s)
    }

    /// Checks a success code; returns the object.
    fn success(&self, code: u16) -> Result<&Value> {
        ensure!(self.code == code, "{}: expected {code}, got {}: {}", self.what, self.code, self.raw);
        Ok(&self.body)
    }

    /// The Status message.
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}})
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_and_yaml_bodies_are_400() -> Result<()> {
    let c = Client::start().await?;
    // Control: the same endpoint takes a good body in either format.
    c.post(SERVICES, JSON, bytes(&service("good-json"))).await?.success(201)?;
    let yaml = "apiVersion: v1\nkind: Service\nmetadata:\n  name: good-yaml\nspec:\n  ports:\n  - port: 80\n";
    assert_eq!(c.post(SERVICES, YAML, yaml).await?.success(201)?["spec"]["ports"][0]["targetPort"], 80);

    c.post(SERVICES, JSON, r#"{"apiVersion":"v1","kind":"Service","#).await?.failure(
        400,
        "BadRequest",
        &["json parse error"],
    )?;
    c.post(SERVICES, JSON, r#"{"metadata":{"name":"x"}"#).await?.failure(400, "BadRequest", &["json parse error"])?;
    c.post(SERVICES, JSON, "{'single': 'quotes'}").await?.failure(400, "BadRequest", &["json parse error"])?;
    c.post(SERVICES, JSON, b"\xff\xfe{}".to_vec()).await?.failure(400, "BadRequest", &[])?;
    c.post(SERVICES, JSON, "").await?.failure(400, "BadRequest", &[])?;
    for not_an_object in ["[1,2]", "\"a string\"", "null", "42", "true"] {
        c.post(SERVICES, JSON, not_an_object).await?.failure(400, "BadRequest", &["Service"])?;
    }
    // Deep nesting hits the decoder's recursion limit instead of the server's stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    c.post(SERVICES, JSON, deep.clone()).await?.failure(400, "BadRequest", &["recursion limit"])?;
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(50_000), "}".repeat(50_000));
    c.post(SERVICES, JSON, deep_object).await?.failure(400, "BadRequest", &[])?;
    // Well-formed JSON of the wrong types.
    let wrong_type = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": "eighty"}]}});
    c.post(SERVICES, JSON, bytes(&wrong_type)).await?.failure(
        400,
        "BadRequest",
        &["Service in version \"v1\" cannot be handled as a Service"],
    )?;
    let wrong_meta = json!({"apiVersion": "v1", "kind": "Service", "metadata": ["x"]});
    c.post(SERVICES, JSON, bytes(&wrong_meta)).await?.failure(400, "BadRequest", &["metadata"])?;

    // YAML.
    c.post(SERVICES, YAML, "apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n").await?.failure(
        400,
        "BadRequest",
        &["YAML"],
    )?;
    c.post(SERVICES, YAML, "metadata:\n\tname: tab-indented\n").await?.failure(400, "BadRequest", &["YAML"])?;
    c.post(SERVICES, YAML, "just a string\n").await?.failure(400, "BadRequest", &[])?;
    // YAML's scanner is quadratic in flow nesting: 100 KB of `[` must be refused at once, not after minutes.
    let started = std::time::Instant::now();
    c.post(SERVICES, YAML, format!("a: {}", "[".repeat(100_000))).await?.failure(400, "BadRequest", &["YAML"])?;
    c.post(SERVICES, YAML, format!("a: {}", "{".repeat(MAX_BODY - 10))).await?.failure(400, "BadRequest", &["YAML"])?;
    ensure!(started.elapsed() < Duration::from_secs(10), "deep YAML took {:?}", started.elapsed());
    // A "billion laughs" alias bomb is refused, not expanded.
    let mut bomb = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        bomb.push_str(&format!("{next}: &{next} [{}]\n", vec![format!("*{prev}"); 9].join(",")));
    }
    c.post(SERVICES, YAML, bomb).await?.failure(400, "BadRequest", &["YAML"])?;

    // Nothing bad was stored.
    let list = c.get(SERVICES).await?;
    let names: Vec<&str> = list.success(200)?["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["good-json", "good-yaml", "kubernetes"]);
    Ok(())
}

#[tokio::test]
async fn bodies_of_the_wrong_kind_or_api_version_are_400() -> Result<()> {
    let c = Client::start().await?;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    c.post(SERVICES, JSON, bytes(&pod)).await?.failure(400, "BadRequest", &["Pod", "Service"])?;
    let mut apps = service("x");
    apps["apiVersion"] = json!("apps/v1");
    c.post(SERVICES, JSON, bytes(&apps)).await?.failure(
        400,
        "BadRequest",
        &["the API version in the data (apps/v1) does not match the expected API version (v1)"],
    )?;
    let mut unknown = service("x");
    unknown["apiVersion"] = json!("frobs.example.com/v9");
    c.post(SERVICES, JSON, bytes(&unknown)).await?.failure(400, "BadRequest", &["frobs.example.com/v9"])?;
    let mut lower = service("x");
    lower["kind"] = json!("service");
    c.post(SERVICES, JSON, bytes(&lower)).await?.failure(400, "BadRequest", &["service", "Service"])?;
    let core_deployment = json!({"apiVersion": "v1", "kind": "Deployment", "metadata": {"name": "d"}});
    c.post("/apis/apps/v1/namespaces/default/deployments", JSON, bytes(&core_deployment)).await?.failure(
        400,
        "BadRequest",
        &["v1", "apps/v1"],
    )?;
    let yaml_pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: y\n";
    c.post(SERVICES, YAML, yaml_pod).await?.failure(400, "BadRequest", &["Pod", "Service"])?;

    // The object's namespace and name must agree with the URL.
    let mut elsewhere = service("x");
    elsewhere["metadata"]["namespace"] = json!("kube-system");
    c.post(SERVICES, JSON, bytes(&elsewhere)).await?.failure(
        400,
        "BadRequest",
        &["the namespace of the provided object does not match the namespace sent on the request"],
    )?;
    c.put(&format!("{SERVICES}/kubernetes"), JSON, bytes(&service("other"))).await?.failure(
        400,
        "BadRequest",
        &["the name of the object (other) does not match the name on the URL (kubernetes)"],
    )?;

    // Control: a body without apiVersion and kind takes them from the URL, as in kube-apiserver.
    let bare = json!({"metadata": {"name": "bare"}, "spec": {"ports": [{"port": 80}]}});
    let created = c.post(SERVICES, JSON, bytes(&bare)).await?;
    assert_eq!(created.success(201)?["kind"], "Service");
    Ok(())
}

#[tokio::test]
async fn bodies_over_3_mib_are_413() -> Result<()> {
    let c = Client::start().await?;
    let big = bytes(&json!({"metadata": {"name": "big"}, "data": {"a": "x".repeat(MAX_BODY)}}));
    c.post(CONFIGMAPS, JSON, big.clone()).await?.failure(413, "RequestEntityTooLarge", &["too large"])?;
    c.post(CONFIGMAPS, YAML, big.clone()).await?.failure(413, "RequestEntityTooLarge", &["too large"])?;

    // A body of just under 3 MiB is read (here: a small ConfigMap padded with whitespace).
    let small = json!({"metadata": {"name": "padded"}, "data": {"a": "b"}}).to_string();
    let mut padded = small.clone().into_bytes();
    padded.pop();
    padded.resize(MAX_BODY - 1, b' ');
    padded.push(b'}');
    assert_eq!(padded.len(), MAX_BODY);
    assert_eq!(c.post(CONFIGMAPS, JSON, padded).await?.success(201)?["data"], json!({"a": "b"}));

    c.put(&format!("{CONFIGMAPS}/padded"), JSON, big.clone()).await?.failure(
        413,
        "RequestEntityTooLarge",
        &["too large"],
    )?;
    c.patch(&format!("{CONFIGMAPS}/padded"), Some(MERGE), big).await?.failure(
        413,
        "RequestEntityTooLarge",
        &["too large"],
    )?;
    let still = c.get(&format!("{CONFIGMAPS}/padded")).await?;
    assert_eq!(still.success(200)?["data"], json!({"a": "b"}));
    Ok(())
}

#[tokio::test]
async fn invalid_names_are_422_with_the_field_named() -> Result<()> {
    let c = Client::start().await?;
    let a = c.post(SERVICES, JSON, bytes(&service("Bad_Name"))).await?;
    let status = a.failure(
        422,
        "Invalid",
        &["Service \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\"", "DNS-1035 label"],
    )?;
    assert_eq!(status["details"]["name"], "Bad_Name");
    assert_eq!(status["details"]["kind"], "Service");
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(status["details"]["causes"][0]["reason"], "FieldValueInvalid");

    let long = "a".repeat(64);
    c.post(SERVICES, JSON, bytes(&service(&long))).await?.failure(
        422,
        "Invalid",
        &["must be no more than 63 characters"],
    )?;
    let nameless = json!({"metadata": {}, "spec": {"ports": [{"port": 80}]}});
    c.post(SERVICES, JSON, bytes(&nameless)).await?.failure(
        422,
        "Invalid",
        &["metadata.name: Required value: name or generateName is required"],
    )?;
    let bad_generate = json!({"metadata": {"generateName": "Bad_"}, "spec": {"ports": [{"port": 80}]}});
    let a = c.post(SERVICES, JSON, bytes(&bad_generate)).await?;
    assert_eq!(a.failure(422, "Invalid", &["Bad_"])?["details"]["causes"][0]["field"], "metadata.generateName");
    let slash = json!({"metadata": {"name": "a/b"}});
    c.post(CONFIGMAPS, JSON, bytes(&slash)).await?.failure(422, "Invalid", &["\"a/b\"", "RFC 1123 subdomain"])?;
    let ns = json!({"metadata": {"name": "Bad_NS"}});
    c.post("/api/v1/namespaces", JSON, bytes(&ns)).await?.failure(422, "Invalid", &["Bad_NS", "RFC 1123 label"])?;
    let bad_label = json!({"metadata": {"name": "labelled", "labels": {"bad key": "v"}}});
    let a = c.post(CONFIGMAPS, JSON, bytes(&bad_label)).await?;
    assert_eq!(a.failure(422, "Invalid", &["bad key"])?["details"]["causes"][0]["field"], "metadata.labels");

    // In a URL, a name that could not exist is simply not found.
    c.get(&format!("{SERVICES}/Bad_Name")).await?.failure(404, "NotFound", &["services \"Bad_Name\" not found"])?;
    c.post("/api/v1/namespaces/Bad_NS/configmaps", JSON, bytes(&json!({"metadata": {"name": "c"}}))).await?.failure(
        404,
        "NotFound",
        &["namespaces \"Bad_NS\" not found"],
    )?;
    Ok(())
}

#[tokio::test]
async fn bad_label_and_field_selectors_are_400() -> Result<()> {
    let c = Client::start().await?;
    let pods = "/api/v1/namespaces/default/pods";
    let q = |s: &str| s.replace(' ', "%20").replace('=', "%3D").replace('!', "%21").replace(',', "%2C");

    for (selector, message) in [
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a=b,", "found '', expected: identifier after ','"),
        ("app===x", "unable to parse requirement: found '=', expected: identifier"),
    ] {
        let a = c.get(&format!("{pods}?labelSelector={}", q(selector))).await?;
        assert_eq!(a.failure(400, "BadRequest", &[message])?["message"], message, "{selector}");
    }
    let long_value = format!("a={}", "v".repeat(64));
    c.get(&format!("{pods}?labelSelector={}", q(&long_value))).await?.failure(400, "BadRequest", &["63"])?;
    c.get(&format!("{pods}?labelSelector={}", q("bad key=x"))).await?.failure(400, "BadRequest", &[])?;

    c.get(&format!("{pods}?fieldSelector=metadata.name")).await?.failure(
        400,
        "BadRequest",
        &["invalid selector: 'metadata.name'; can't understand 'metadata.name'"],
    )?;
    c.get(&format!("{pods}?fieldSelector={}", q("spec.bogus=x"))).await?.failure(
        400,
        "BadRequest",
        &["field label not supported: spec.bogus"],
    )?;
    c.get(&format!("{SERVICES}?fieldSelector={}", q("spec.nodeName=x"))).await?.failure(
        400,
        "BadRequest",
        &["field label not supported: spec.nodeName"],
    )?;
    // A watch with a bad selector fails at once instead of streaming.
    c.get(&format!("{pods}?watch=true&labelSelector={}", q("a in (b"))).await?.failure(400, "BadRequest", &[])?;
    c.get(&format!("{pods}?watch=true&fieldSelector={}", q("spec.bogus=x"))).await?.failure(
        400,
        "BadRequest",
        &["spec.bogus"],
    )?;

    // Controls: the supported selectors are answered.
    let ok = c.get(&format!("{pods}?fieldSelector={}", q("spec.nodeName=,status.phase!=Running"))).await?;
    assert_eq!(ok.success(200)?["kind"], "PodList");
    let ok = c.get(&format!("{SERVICES}?labelSelector={}", q("component in (apiserver,x),!nope"))).await?;
    let items = ok.success(200)?["items"].as_array().map(Vec::len);
    assert_eq!(items, Some(1), "the kubernetes Service has component=apiserver");
    let ok = c
        .get(&format!("{SERVICES}?fieldSelector={}", q("metadata.name=kubernetes,metadata.namespace=default")))
        .await?;
    assert_eq!(ok.success(200)?["items"].as_array().map(Vec::len), Some(1));
    Ok(())
}

#[tokio::test]
async fn bad_patches_are_400_or_422_and_change_nothing() -> Result<()> {
    let c = Client::start().await?;
    let target = format!("{CONFIGMAPS}/target");
    let created = c.post(CONFIGMAPS, JSON, bytes(&json!({"metadata": {"name": "target"}, "data": {"a": "1"}}))).await?;
    let rv = created.success(201)?["metadata"]["resourceVersion"].clone();

    // JSON patch documents that are not a list of operations: 400.
    c.patch(&target, Some(JSON_PATCH), r#"{"op":"add","path":"/data/b","value":"2"}"#).await?.failure(
        400,
        "BadRequest",
        &[],
    )?;
    c.patch(&target, Some(JSON_PATCH), r#"[{"op":"add","#).await?.failure(400, "BadRequest", &[])?;
    // Operations that cannot be applied: 422 (as kube-apiserver's "the server rejected our request").
    for (ops, about) in [
        (r#"[{"op":"frob","path":"/data/a","value":"2"}]"#, "frob"),
        (r#"[{"op":"remove","path":"/data/nope"}]"#, "/data/nope"),
        (r#"[{"op":"replace","path":"/metadata/nope/x","value":1}]"#, "/metadata/nope/x"),
        (r#"[{"op":"test","path":"/data/a","value":"2"}]"#, "/data/a"),
        (r#"[{"op":"add","path":"data/b","value":"2"}]"#, "does not start with a slash"),
    ] {
        let a = c.patch(&target, Some(JSON_PATCH), ops).await?;
        a.failure(422, "Invalid", &[])?;
        ensure!(a.raw.contains(about), "{ops}: the answer does not mention {about:?}: {}", a.raw);
    }
    // Merge and strategic merge patches that are not JSON objects.
    c.patch(&target, Some(MERGE), "{nope").await?.failure(400, "BadRequest", &[])?;
    c.patch(&target, Some(STRATEGIC), "{nope").await?.failure(400, "BadRequest", &[])?;
    c.patch(&target, Some(STRATEGIC), "[1,2]").await?.failure(400, "BadRequest", &[])?;
    c.patch(&target, Some(MERGE), "").await?.failure(400, "BadRequest", &[])?;
    // A patch whose result does not decode, or has unknown fields under Strict, is an invalid patch (a PUT
    // of the same object would be 400).
    c.patch(&target, Some(MERGE), r#"{"data":{"a":1}}"#).await?.failure(422, "Invalid", &["patch: Invalid value: "])?;
    c.patch(&format!("{target}?fieldValidation=Strict"), Some(MERGE), r#"{"datax":{"a":"2"}}"#).await?.failure(
        422,
        "Invalid",
        &["patch: Invalid value: ", "strict decoding error: unknown field \"datax\""],
    )?;
    c.patch(
        &format!("{target}?fieldValidation=Strict"),
        Some(JSON_PATCH),
        r#"[{"op":"add","path":"/datax","value":{"a":"b"}}]"#,
    )
    .await?
    .failure(422, "Invalid", &["unknown field \"datax\""])?;
    // A patch of nothing.
    c.patch(&format!("{CONFIGMAPS}/nope"), Some(MERGE), r#"{"data":{"a":"2"}}"#).await?.failure(
        404,
        "NotFound",
        &["configmaps \"nope\" not found"],
    )?;

    let after = c.get(&target).await?;
    let after = after.success(200)?;
    assert_eq!(
        (&after["data"], &after["metadata"]["resourceVersion"]),
        (&json!({"a": "1"}), &rv),
        "a failed patch wrote"
    );
    // Control: a good JSON patch applies.
    let ok = c.patch(&target, Some(JSON_PATCH), r#"[{"op":"add","path":"/data/b","value":"2"}]"#).await?;
    assert_eq!(ok.success(200)?["data"], json!({"a": "1", "b": "2"}));
    Ok(())
}

#[tokio::test]
async fn wrong_content_types_are_415() -> Result<()> {
    let c = Client::start().await?;
    let target = format!("{SERVICES}/kubernetes");
    let patch_types =
        ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"];
    for ct in [Some(JSON), Some("text/plain"), Some(YAML), None] {
        let a = c.patch(&target, ct, r#"{"metadata":{"labels":{"x":"y"}}}"#).await?;
        let status = a.failure(415, "UnsupportedMediaType", &patch_types)?;
        ensure!(
            status["message"]
                .as_str()
                .is_some_and(|m| m
                    .starts_with("the body of the request was in an unknown format - accepted media types include: ")),
            "{}",
            a.raw
        );
    }
    let a = c.post(SERVICES, "text/plain", bytes(&service("x"))).await?;
    a.failure(415, "UnsupportedMediaType", &["application/json", "application/yaml"])?;
    ensure!(
        !a.message().contains("text/plain"),
        "the message lists what is accepted, not what was sent: {}",
        a.message()
    );
    // Protobuf is accepted (kubectl's typed `create` generators send it), so a broken protobuf body
    // is a 400 that says what is wrong, not a 415.
    c.post(SERVICES, "application/vnd.kubernetes.protobuf", b"k8s\x00".to_vec()).await?.failure(
        400,
        "BadRequest",
        &["protobuf"],
    )?;
    c.post(SERVICES, "application/vnd.kubernetes.protobuf", b"not protobuf at all".to_vec()).await?.failure(
        400,
        "BadRequest",
        &["protobuf"],
    )?;
    c.put(&target, "application/xml", "<service/>").await?.failure(
        415,
        "UnsupportedMediaType",
        &["application/json"],
    )?;
    let labels = c.get(&target).await?;
    assert!(labels.success(200)?["metadata"]["labels"].get("x").is_none(), "a refused patch changed the object");
    Ok(())
}

#[tokio::test]
async fn unknown_resources_are_404_and_wrong_methods_405() -> Result<()> {
    let c = Client::start().await?;
    for path in [
        "/api/v1/frobs",
        "/api/v1/namespaces/default/frobs",
        "/api/v1/namespaces/default/frobs/x",
        "/apis/apps/v1/namespaces/default/frobs",
        "/apis/frobs.example.com/v1/things",
        "/apis/nope",
        "/api/v2/pods",
        "/apis/apps/v9/deployments",
        "/api/v1/namespaces/default/services/kubernetes/bogus",
        "/api/v1/namespaces/default/services/kubernetes/status/extra",
    ] {
        c.get(path).await?.failure(404, "NotFound", &["the server could not find the requested resource"])?;
    }
    c.post("/api/v1/namespaces/default/frobs", JSON, "{}").await?.failure(404, "NotFound", &[])?;
    c.send(Method::DELETE, "/apis/apps/v1/frobs/x", None, Vec::new()).await?.failure(404, "NotFound", &[])?;
    let a = c.get(&format!("{SERVICES}/nope")).await?;
    let status = a.failure(404, "NotFound", &["services \"nope\" not found"])?;
    assert_eq!(status["details"], json!({"name": "nope", "kind": "services"}));
    let a = c.get("/apis/apps/v1/namespaces/default/deployments/nope").await?;
    assert_eq!(a.failure(404, "NotFound", &["deployments.apps \"nope\" not found"])?["details"]["group"], "apps");
    c.send(Method::DELETE, &format!("{SERVICES}/nope"), None, Vec::new()).await?.failure(404, "NotFound", &[])?;

    c.put(SERVICES, JSON, bytes(&service("x"))).await?.failure(405, "MethodNotAllowed", &[])?;
    c.send(Method::DELETE, &format!("{SERVICES}/kubernetes/status"), None, Vec::new()).await?.failure(
        405,
        "MethodNotAllowed",
        &[],
    )?;
    c.post("/api/v1/services", JSON, bytes(&service("x"))).await?.failure(405, "MethodNotAllowed", &[])?;
    Ok(())
}

#[tokio::test]
async fn unknown_fields_are_400_with_strict_and_warnings_otherwise() -> Result<()> {
    let c = Client::start().await?;
    let mut body = service("strict");
    body["spec"]["portz"] = json!(1);
    body["spec"]["ports"][0]["bogus"] = json!(true);
    let a = c.post(&format!("{SERVICES}?fieldValidation=Strict"), JSON, bytes(&body)).await?;
    a.failure(
        400,
        "BadRequest",
        &[
            "Service in version \"v1\" cannot be handled as a Service: strict decoding error: ",
            "unknown field \"spec.portz\"",
            "unknown field \"spec.ports[0].bogus\"",
        ],
    )?;
    let yaml =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: strict\n  bogusMeta: 1\nspec:\n  ports:\n  - port: 80\n";
    c.post(&format!("{SERVICES}?fieldValidation=Strict"), YAML, yaml).await?.failure(
        400,
        "BadRequest",
        &["unknown field \"metadata.bogusMeta\""],
    )?;
    c.get(&format!("{SERVICES}/strict")).await?.failure(404, "NotFound", &[])?;

    // Warn (the default when not given) and Ignore store the object without the unknown fields.
    let warned = c.post(&format!("{SERVICES}?fieldValidation=Warn"), JSON, bytes(&body)).await?;
    let stored = warned.success(201)?;
    assert!(stored["spec"].get("portz").is_none() && stored["spec"]["ports"][0].get("bogus").is_none(), "{stored}");
    let warnings: Vec<&str> = warned.headers.get_all("warning").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(warnings.contains(&r#"299 - "unknown field \"spec.portz\"""#), "{warnings:?}");
    let mut other = body.clone();
    other["metadata"]["name"] = json!("defaulted");
    let a = c.post(SERVICES, JSON, bytes(&other)).await?;
    a.success(201)?;
    assert!(a.headers.get_all("warning").iter().count() >= 2, "fieldValidation defaults to Warn: {:?}", a.headers);
    other["metadata"]["name"] = json!("ignored");
    let a = c.post(&format!("{SERVICES}?fieldValidation=Ignore"), JSON, bytes(&other)).await?;
    a.success(201)?;
    assert_eq!(a.headers.get_all("warning").iter().count(), 0, "{:?}", a.headers);

    // Updates are checked the same way.
    let mut update = warned.body.clone();
    update["spec"]["portz"] = json!(2);
    c.put(&format!("{SERVICES}/strict?fieldValidation=Strict"), JSON, bytes(&update)).await?.failure(
        400,
        "BadRequest",
        &["strict decoding error: unknown field \"spec.portz\""],
    )?;
    Ok(())
}

#[tokio::test]
async fn bad_query_parameters_are_400() -> Result<()> {
    let c = Client::start().await?;
    c.get(&format!("{SERVICES}?limit=abc")).await?.failure(400, "BadRequest", &["limit", "abc"])?;
    c.get(&format!("{SERVICES}?resourceVersion=abc")).await?.failure(400, "BadRequest", &["resourceVersion", "abc"])?;
    c.get(&format!("{SERVICES}?watch=true&resourceVersion=abc")).await?.failure(400, "BadRequest", &["abc"])?;
    c.get(&format!("{SERVICES}?timeoutSeconds=soon")).await?.failure(400, "BadRequest", &["timeoutSeconds"])?;
    c.get(&format!("{SERVICES}?watch=maybe")).await?.failure(400, "BadRequest", &["watch"])?;
    c.get(&format!("{SERVICES}?resourceVersionMatch=Exact")).await?.failure(
        400,
        "BadRequest",
        &["resourceVersionMatch is forbidden unless resourceVersion is provided"],
    )?;
    c.get(&format!("{SERVICES}?continue=garbage")).await?.failure(400, "BadRequest", &[])?;
    c.send(Method::DELETE, &format!("{SERVICES}/kubernetes?propagationPolicy=Sometimes"), None, Vec::new())
        .await?
        .failure(400, "BadRequest", &["propagationPolicy", "Sometimes"])?;
    c.get(&format!("{SERVICES}/kubernetes")).await?.success(200)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Property test: random bodies on the decoding paths
// ---------------------------------------------------------------------------------------------------------

/// Any JSON value, a few levels deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        "[ -~]{0,12}".prop_map(Value::String),
        Just(json!("TCP")),
        Just(json!("None")),
        Just(json!(80)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-zA-Z$/.]{1,10}",
                    Just("ports".to_string()),
                    Just("port".to_string()),
                    Just("name".to_string()),
                    Just("metadata".to_string()),
                    Just("spec".to_string()),
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request body: raw bytes, a random JSON document, or a Service with one random part.
fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        arb_json().prop_map(|v| bytes(&v)),
        (arb_json(), arb_json()).prop_map(|(spec, meta)| {
            bytes(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"generateName": "fuzz-", "labels": meta}, "spec": spec}))
        }),
        arb_json().prop_map(|port| {
            bytes(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"generateName": "fuzz-"}, "spec": {"ports": [port]}}))
        }),
    ]
}

#[derive(Debug, Clone)]
enum Call {
    Create(&'static str),
    Replace(&'static str),
    Patch(&'static str),
}

fn arb_call() -> impl Strategy<Value = Call> {
    prop_oneof![
        prop_oneof![Just(JSON), Just(YAML), Just("text/plain")].prop_map(Call::Create),
        prop_oneof![Just(JSON), Just(YAML)].prop_map(Call::Replace),
        prop_oneof![Just(MERGE), Just(STRATEGIC), Just(JSON_PATCH)].prop_map(Call::Patch),
    ]
}

#[test]
fn random_bodies_never_get_a_5xx_or_stop_the_server() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let c = rt.block_on(Client::start())?;
    rt.block_on(c.post(SERVICES, JSON, bytes(&service("target"))))?.success(201)?;
    let mut runner = TestRunner::new(Config { cases: 300, failure_persistence: None, ..Config::default() });
    runner
        .run(&(arb_call(), arb_body()), |(call, body)| {
            let answer = rt.block_on(async {
                match call {
                    Call::Create(ct) => c.post(SERVICES, ct, body).await,
                    Call::Replace(ct) => c.put(&format!("{SERVICES}/target"), ct, body).await,
                    Call::Patch(ct) => c.patch(&format!("{SERVICES}/target"), Some(ct), body).await,
                }
            });
            // `send` already failed on a 5xx or a server that stopped answering /readyz.
            let answer = answer.map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            if answer.code >= 400 {
                let s = &answer.body;
                prop_assert!(
                    s["kind"] == "Status"
                        && s["code"] == answer.code
                        && s["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{}: {} is not a Status with a message: {}",
                    answer.what,
                    answer.code,
                    answer.raw
                );
            } else {
                prop_assert!(answer.code == 200 || answer.code == 201, "{}: {}", answer.what, answer.raw);
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    rt.block_on(c.ready())
}
