//! The protocol as a runtime sees it, without kernel changes: VERSION, and the error codes for bad
//! environments, configurations and versions (no root needed).

mod common;

use std::process::Command;

use common::{run, KNET_CNI};
use serde_json::{json, Value};

fn plugin(env: &[(&str, &str)], conf: &Value) -> common::Out {
    let mut cmd = Command::new(KNET_CNI);
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, conf)
}

fn add_env(netns: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CNI_COMMAND", "ADD".to_string()),
        ("CNI_CONTAINERID", "c1".to_string()),
        ("CNI_NETNS", netns.to_string()),
        ("CNI_IFNAME", "eth0".to_string()),
        ("CNI_PATH", "/usr/lib/cni".to_string()),
    ]
}

fn conf() -> Value {
    json!({"cniVersion": "1.1.0", "name": "net", "type": "knet-cni",
           "ipam": {"type": "host-local", "subnet": "10.244.9.0/24", "dataDir": "/nonexistent/knet-cni-test"}})
}

fn with_env<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn version_lists_the_supported_versions() {
    let out = plugin(&[("CNI_COMMAND", "VERSION")], &json!({"cniVersion": "1.0.0"}));
    assert_eq!(
        out.result(),
        &json!({"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]})
    );
    let out = plugin(&[("CNI_COMMAND", "VERSION")], &json!({"cniVersions": ["0.4.0", "1.1.0"]}));
    assert_eq!(out.result()["cniVersion"], json!("1.1.0"));
}

#[test]
fn environment_errors_are_code_4_and_name_the_variables() {
    let out = plugin(&[("CNI_COMMAND", "ADD")], &conf());
    assert_eq!(out.code(), 4);
    assert!(out.msg().contains("CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME"), "{}", out.stdout);
    assert_eq!(out.json["cniVersion"], json!("1.1.0"));
    assert_eq!(plugin(&[], &conf()).code(), 4);
    assert_eq!(plugin(&[("CNI_COMMAND", "FROB")], &conf()).code(), 4);
    let mut env = add_env("/run/netns/x");
    env[1].1 = "bad id!".into();
    assert_eq!(plugin(&with_env(&env), &conf()).code(), 4);
    let mut env = add_env("/run/netns/x");
    env.push(("CNI_ARGS", "FOO=bar".into()));
    let out = plugin(&with_env(&env), &conf());
    assert_eq!(out.code(), 4);
    assert!(out.msg().contains("FOO"));
}

#[test]
fn configuration_errors_have_their_codes() {
    let env = add_env("/run/netns/knet-cni-does-not-exist");
    let env = with_env(&env);
    let mut c = conf();
    c["cniVersion"] = json!("0.2.0");
    assert_eq!(plugin(&env, &c).code(), 1);
    let mut c = conf();
    c["ipMasq"] = json!(true);
    let out = plugin(&env, &c);
    assert_eq!(out.code(), 2);
    assert!(out.msg().contains("ipMasq") && out.msg().contains("SNAT"), "{}", out.stdout);
    let mut c = conf();
    c["macspoofchk"] = json!(true);
    assert_eq!(plugin(&env, &c).code(), 2);
    let mut c = conf();
    c["mtu"] = json!("big");
    assert_eq!(plugin(&env, &c).code(), 6);
    let out = plugin(&env, &json!("not an object"));
    assert_eq!(out.code(), 6);
    let mut c = conf();
    c["ipam"]["subnet"] = json!("10.0.0.0/31");
    let out = plugin(&env, &c);
    assert_eq!(out.code(), 7);
    assert!(out.msg().contains("too small"), "{}", out.stdout);
    // A namespace that does not exist: the container is unknown.
    assert_eq!(plugin(&env, &conf()).code(), 3);
}

#[test]
fn commands_need_their_spec_version() {
    let mut c = conf();
    c["cniVersion"] = json!("1.0.0");
    for cmd in ["GC", "STATUS"] {
        let out = plugin(&[("CNI_COMMAND", cmd), ("CNI_PATH", "/usr/lib/cni")], &c);
        assert_eq!(out.code(), 1, "{cmd}");
        assert_eq!(out.json["cniVersion"], json!("1.0.0"));
    }
    c["cniVersion"] = json!("0.3.1");
    let env =
        [("CNI_COMMAND", "CHECK"), ("CNI_CONTAINERID", "c"), ("CNI_NETNS", "/run/netns/x"), ("CNI_IFNAME", "eth0")];
    assert_eq!(plugin(&env, &c).code(), 1);
    // CHECK without prevResult is an invalid configuration.
    let out = plugin(&env, &conf());
    assert_eq!(out.code(), 7);
    assert!(out.msg().contains("prevResult"));
}
