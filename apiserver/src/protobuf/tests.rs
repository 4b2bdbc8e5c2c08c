//! Tests of the protobuf decoder, on bodies built by hand the way go-to-protobuf writes them.

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// A tiny protobuf writer for the tests.
#[derive(Default, Clone)]
struct W(Vec<u8>);

impl W {
    fn varint(mut self, mut v: u64) -> Self {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
    fn key(self, n: u32, wire: u8) -> Self {
        self.varint(u64::from(n) << 3 | u64::from(wire))
    }
    fn int(self, n: u32, v: i64) -> Self {
        self.key(n, 0).varint(v as u64)
    }
    fn bytes(self, n: u32, b: &[u8]) -> Self {
        let mut w = self.key(n, 2).varint(b.len() as u64);
        w.0.extend_from_slice(b);
        w
    }
    fn str(self, n: u32, s: &str) -> Self {
        self.bytes(n, s.as_bytes())
    }
    fn msg(self, n: u32, m: W) -> Self {
        self.bytes(n, &m.0)
    }
    fn entry(self, n: u32, k: &str, v: &str) -> Self {
        self.msg(n, W::default().str(1, k).str(2, v))
    }
}

fn body(api_version: &str, kind: &str, raw: W) -> Vec<u8> {
    let u = W::default().msg(1, W::default().str(1, api_version).str(2, kind)).msg(2, raw).str(3, "").str(4, "");
    let mut out = MAGIC.to_vec();
    out.extend(u.0);
    out
}

/// ObjectMeta as go-to-protobuf writes it: every non-pointer field, even empty.
fn meta(name: &str, ns: &str) -> W {
    W::default()
        .str(1, name)
        .str(2, "")
        .str(3, ns)
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .int(7, 0)
        .msg(8, W::default().int(1, 0).int(2, 0))
}

#[test]
fn decodes_a_namespace() {
    let raw = W::default().msg(1, meta("policy-demo", "")).msg(2, W::default()).msg(3, W::default().str(1, ""));
    let v = decode_request_body(&body("v1", "Namespace", raw)).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "policy-demo"}, "spec": {}, "status": {}})
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys[..2], ["apiVersion", "kind"]);
}

#[test]
fn decodes_a_deployment_like_kubectl_create() {
    let labels = |w: W| w.entry(11, "app", "nginx");
    let container = W::default()
        .str(1, "nginx")
        .str(2, "nginx")
        .msg(8, W::default())
        .str(13, "")
        .str(14, "")
        .msg(6, W::default().str(1, "").int(3, 80).str(4, "TCP"));
    let pod_spec = W::default().msg(2, container).str(3, "").str(8, "");
    let template = W::default().msg(1, labels(meta("", ""))).msg(2, pod_spec);
    let selector = W::default().entry(1, "app", "nginx");
    let spec =
        W::default().int(1, 0).msg(2, selector).msg(3, template).msg(4, W::default().str(1, "")).int(5, 0).int(7, 0);
    let raw = W::default().msg(1, labels(meta("nginx", "policy-demo"))).msg(2, spec).msg(3, W::default());
    let v = decode_request_body(&body("apps/v1", "Deployment", raw)).unwrap();
    assert_eq!(
        v,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "nginx", "namespace": "policy-demo", "labels": {"app": "nginx"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {
                    "metadata": {"labels": {"app": "nginx"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {},
                                             "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}
                },
                "strategy": {},
            },
            "status": {}
        })
    );
}

#[test]
fn secrets_are_base64_and_services_keep_int_or_string() {
    let raw = W::default().msg(1, meta("s", "d")).msg(2, W::default().str(1, "a").bytes(2, b"b\xff")).str(3, "Opaque");
    let v = decode_request_body(&body("v1", "Secret", raw)).unwrap();
    assert_eq!(v["data"], json!({"a": "Yv8="}));
    assert_eq!(v["type"], "Opaque");
    let port = |t: W| W::default().str(1, "80-80").str(2, "TCP").int(3, 80).msg(4, t).int(5, 0);
    let spec = W::default()
        .msg(1, port(W::default().int(1, 0).int(2, 8080).str(3, "")))
        .msg(1, port(W::default().int(1, 1).int(2, 0).str(3, "http")))
        .str(4, "ClusterIP")
        .str(10, "");
    let v = decode_request_body(&body("v1", "Service", W::default().msg(1, meta("cs", "d")).msg(2, spec))).unwrap();
    let ports = &v["spec"]["ports"];
    assert_eq!(ports[0], json!({"name": "80-80", "protocol": "TCP", "port": 80, "targetPort": 8080}));
    assert_eq!(ports[1]["targetPort"], "http");
    assert_eq!(v["spec"]["type"], "ClusterIP");
}

#[test]
fn times_and_quantities() {
    let m = meta("x", "").msg(9, W::default().int(1, 1_700_000_000).int(2, 5));
    let v = decode_request_body(&body("v1", "ConfigMap", W::default().msg(1, m))).unwrap();
    assert_eq!(v["metadata"]["deletionTimestamp"], "2023-11-14T22:13:20Z");
    assert!(v["metadata"].get("creationTimestamp").is_none(), "the zero Time is left out: {v}");
    let q = |s: &str| W::default().str(1, s);
    let res = W::default().msg(1, W::default().str(1, "cpu").msg(2, q("100m")));
    let c = W::default().str(1, "c").msg(8, res);
    let spec = W::default().msg(2, c);
    let v = decode_request_body(&body("v1", "Pod", W::default().msg(1, meta("p", "d")).msg(2, spec))).unwrap();
    assert_eq!(v["spec"]["containers"][0]["resources"], json!({"limits": {"cpu": "100m"}}));
}

#[test]
fn negative_int32_and_packed_repeated() {
    // A negative int32 is a sign-extended 10-byte varint.
    let spec = W::default().int(1, -1);
    let v = decode_request_body(&body("apps/v1", "Deployment", W::default().msg(2, spec))).unwrap();
    assert_eq!(v["spec"]["replicas"], -1);
}

#[test]
fn bad_input_is_a_clear_error() {
    let err = |b: &[u8]| decode_request_body(b).unwrap_err().to_string();
    assert!(err(b"{}").contains("prefix"));
    let e = err(&body("v1", "ConfigMap", W::default().str(99, "x")));
    assert!(e.contains("k8s.io.api.core.v1.ConfigMap") && e.contains("unknown field number 99"), "{e}");
    let e = err(&body("v1", "ConfigMap", W::default().int(1, 3)));
    assert!(e.contains("field 1 has wire type 0, expected 2"), "{e}");
    let e = err(&body("v1", "Frob", W::default()));
    assert!(e.contains("no kind \"Frob\""), "{e}");
    let e = err(&body("v1", "ConfigMap", W::default().msg(1, W::default().bytes(1, b"\xff"))));
    assert!(e.contains("not valid UTF-8"), "{e}");
    let mut b = body("v1", "ConfigMap", W::default().str(1, "abc"));
    b.truncate(b.len() - 1);
    assert!(err(&b).contains("ends inside"));
    assert!(matches!(ApiError::from(ProtobufError::Magic), ApiError::BadRequest(_)));
}

#[test]
fn embedded_structs_are_inline() {
    let path = W::default()
        .str(1, "/bar")
        .str(3, "Prefix")
        .msg(2, W::default().msg(4, W::default().str(1, "svc1").msg(2, W::default().str(1, "").int(2, 8080))));
    let rule = W::default().str(1, "foo.com").msg(2, W::default().msg(1, W::default().msg(1, path)));
    let spec = W::default().msg(2, W::default().str(2, "my-cert")).msg(3, rule).str(4, "default");
    let v = decode_request_body(&body("networking.k8s.io/v1", "Ingress", W::default().msg(2, spec))).unwrap();
    assert_eq!(
        v["spec"],
        json!({"tls": [{"secretName": "my-cert"}], "rules": [{"host": "foo.com", "http": {"paths": [
            {"path": "/bar", "pathType": "Prefix", "backend": {"service": {"name": "svc1", "port": {"number": 8080}}}}
        ]}}], "ingressClassName": "default"})
    );
}

#[test]
fn names_messages_by_group() {
    assert_eq!(message_name("v1", "Pod"), "k8s.io.api.core.v1.Pod");
    assert_eq!(message_name("networking.k8s.io/v1", "Ingress"), "k8s.io.api.networking.v1.Ingress");
    assert_eq!(message_name("apps/v1", "DeleteOptions"), "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions");
}

#[test]
fn schema_is_sorted_and_closed() {
    for w in schema::MESSAGES.windows(2) {
        assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
    }
    for m in schema::MESSAGES {
        for f in m.fields {
            if let decode::Kind::Msg(n) = f.kind {
                assert!(decode::find(n).is_some(), "{}.{} refers to {n}", m.name, f.json);
            }
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..256), kind in 0usize..4) {
        let kinds = [("v1", "Pod"), ("apps/v1", "Deployment"), ("v1", "Service"), ("networking.k8s.io/v1", "Ingress")];
        let (av, k) = kinds[kind];
        let mut b = body(av, k, W(raw.clone()));
        let _ = decode_request_body(&b);
        b.truncate(raw.len() / 2);
        let _ = decode_request_body(&b);
        let mut whole = MAGIC.to_vec();
        whole.extend(&raw);
        let _ = decode_request_body(&whole);
    }
}
