//! knet-cni among Debian's reference plugins (/usr/lib/cni), as root: a conflist chain where `tuning` runs
//! after knet-cni on its prevResult, host-local and knet-cni sharing one data directory both ways, an
//! attachment made by the reference bridge checked and deleted by knet-cni, and delegation to another IPAM
//! plugin. The reference plugins speak spec versions up to 1.0.0, so these configurations use 1.0.0.

mod common;

use std::path::Path;

use common::{with_prev, Att, Lab, REFERENCE_DIR};
use serde_json::{json, Value};

fn reference(plugin: &str) -> String {
    format!("{REFERENCE_DIR}/{plugin}")
}

fn have_reference(test: &str) -> bool {
    if !common::can_run(test) {
        return false;
    }
    let ok = ["bridge", "host-local", "tuning", "static"].iter().all(|p| Path::new(&reference(p)).exists());
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: Debian's containernetworking-plugins are not installed in {REFERENCE_DIR}");
    }
    if !ok {
        eprintln!("skipping {test}: containernetworking-plugins not installed");
    }
    ok
}

#[test]
fn tuning_runs_after_knet_cni_on_its_result() {
    if !have_reference("tuning_runs_after_knet_cni_on_its_result") {
        return;
    }
    let mut lab = Lab::new();
    let ns = lab.container();
    let first = lab.conf("1.0.0", "chain", json!({"ranges": [[{"subnet": "10.244.4.0/24"}]]}));
    let tuning = json!({"cniVersion": "1.0.0", "name": "chain", "type": "tuning",
                        "sysctl": {"net.ipv4.conf.eth0.arp_announce": "2"},
                        "runtimeConfig": {"mac": "02:42:0a:f4:04:63"}});
    let att = Att { id: "c1", netns: &ns, ifname: "eth0" };
    let r1 = lab.cni("ADD", "c1", &ns, &first).result().clone();
    let out = lab.exec(&reference("tuning"), "ADD", att, &with_prev(&tuning, &r1), &[]);
    let r2 = out.result().clone();
    assert_eq!(r2["interfaces"][2]["mac"], json!("02:42:0a:f4:04:63"), "{}", out.stdout);
    assert_eq!(r2["ips"], r1["ips"]);
    assert!(lab.ct_ip(0, &["link", "show", "eth0"]).contains("02:42:0a:f4:04:63"));
    let sysctl =
        lab.containers[0].command("cat").unwrap().arg("/proc/sys/net/ipv4/conf/eth0/arp_announce").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&sysctl.stdout).trim(), "2");

    // The runtime CHECKs every plugin with the chain's final result, then DELs in reverse order.
    let check = lab.cni("CHECK", "c1", &ns, &with_prev(&first, &r2));
    assert!(check.ok, "{}", check.stdout);
    assert!(lab.exec(&reference("tuning"), "CHECK", att, &with_prev(&tuning, &r2), &[]).ok);
    assert!(lab.exec(&reference("tuning"), "DEL", att, &with_prev(&tuning, &r2), &[]).ok);
    assert!(lab.cni("DEL", "c1", &ns, &with_prev(&first, &r2)).ok);
    assert!(lab.leases("chain").is_empty());
    assert_eq!(lab.host_links(), ["kbr0"]);
}

fn host_local(lab: &Lab, command: &str, id: &str, ns: &Path, conf: &Value) -> common::Out {
    lab.exec(&reference("host-local"), command, Att { id, netns: ns, ifname: "eth0" }, conf, &[])
}

#[test]
fn host_local_and_knet_cni_share_a_data_directory() {
    if !have_reference("host_local_and_knet_cni_share_a_data_directory") {
        return;
    }
    let mut lab = Lab::new();
    let conf = lab.conf("1.0.0", "shared", json!({"ranges": [[{"subnet": "10.244.6.0/24"}]]}));
    let mut gc = conf.clone();
    gc["cniVersion"] = json!("1.1.0");
    let a = lab.container();
    let b = lab.container();
    let c = lab.container();
    assert_eq!(lab.cni("ADD", "c1", &a, &conf).result()["ips"][0]["address"], json!("10.244.6.2/24"));
    // host-local continues knet-cni's round robin from last_reserved_ip.0 …
    let out = host_local(&lab, "ADD", "c2", &b, &conf);
    assert_eq!(out.result()["ips"][0]["address"], json!("10.244.6.3/24"), "{}", out.stdout);
    // … and knet-cni continues host-local's.
    assert_eq!(lab.cni("ADD", "c3", &c, &conf).result()["ips"][0]["address"], json!("10.244.6.4/24"));
    // host-local finds and releases knet-cni's leases.
    assert!(host_local(&lab, "CHECK", "c3", &c, &conf).ok);
    assert!(host_local(&lab, "DEL", "c1", &a, &conf).ok);
    assert_eq!(lab.leases("shared"), ["10.244.6.3", "10.244.6.4"]);
    // knet-cni's GC frees host-local's lease of an attachment that is no longer valid.
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "c3", "ifname": "eth0"}]);
    assert!(lab.cni("GC", "", Path::new(""), &gc).ok);
    assert_eq!(lab.leases("shared"), ["10.244.6.4"]);
}

#[test]
fn knet_cni_checks_and_deletes_what_the_reference_bridge_made() {
    if !have_reference("knet_cni_checks_and_deletes_what_the_reference_bridge_made") {
        return;
    }
    let mut lab = Lab::new();
    let ns = lab.container();
    let mut conf = lab.conf("1.0.0", "ref", json!({"ranges": [[{"subnet": "10.244.7.0/24"}]]}));
    conf["type"] = json!("bridge");
    let att = Att { id: "c1", netns: &ns, ifname: "eth0" };
    let out = lab.exec(&reference("bridge"), "ADD", att, &conf, &[]);
    let r = out.result().clone();
    assert_eq!(r["ips"][0]["address"], json!("10.244.7.2/24"));
    let check = lab.cni("CHECK", "c1", &ns, &with_prev(&conf, &r));
    assert!(check.ok, "{}", check.stdout);
    assert!(lab.cni("DEL", "c1", &ns, &with_prev(&conf, &r)).ok);
    assert!(lab.leases("ref").is_empty());
    assert_eq!(lab.host_links(), ["kbr0"]);
    // And the reference bridge attaches next to knet-cni on the bridge knet-cni made.
    let ns2 = lab.container();
    let mut knet = conf.clone();
    knet["type"] = json!("knet-cni");
    let ip_of = |r: &Value| r["ips"][0]["address"].as_str().unwrap().trim_end_matches("/24").to_string();
    let knet_ip = ip_of(lab.cni("ADD", "k1", &ns2, &knet).result());
    let ref_ip = ip_of(lab.exec(&reference("bridge"), "ADD", att, &conf, &[]).result());
    assert_ne!(knet_ip, ref_ip);
    assert!(lab.ping(0, &knet_ip), "reference pod -> knet-cni pod {knet_ip}");
    assert!(lab.ping(1, &ref_ip), "knet-cni pod -> reference pod {ref_ip}");
}

#[test]
fn other_ipam_types_are_delegated_through_cni_path() {
    if !have_reference("other_ipam_types_are_delegated_through_cni_path") {
        return;
    }
    let mut lab = Lab::new();
    let ns = lab.container();
    let conf = json!({"cniVersion": "1.0.0", "name": "static", "type": "knet-cni", "bridge": "kbr0", "isGateway": true,
                      "ipam": {"type": "static", "addresses": [{"address": "10.244.8.7/24", "gateway": "10.244.8.1"}],
                               "routes": [{"dst": "10.96.0.0/16"}]}});
    let r = lab.cni("ADD", "c1", &ns, &conf).result().clone();
    assert_eq!(r["ips"], json!([{"interface": 2, "address": "10.244.8.7/24", "gateway": "10.244.8.1"}]));
    assert!(lab.ct_ip(0, &["route"]).contains("10.96.0.0/16 via 10.244.8.1 dev eth0"));
    assert!(lab.ping(0, "10.244.8.1"));
    assert!(lab.cni("CHECK", "c1", &ns, &with_prev(&conf, &r)).ok);
    assert!(lab.cni("DEL", "c1", &ns, &conf).ok);
    // An IPAM type that is not on CNI_PATH: a clear error, nothing left behind.
    let mut missing = conf.clone();
    missing["ipam"]["type"] = json!("no-such-ipam");
    let out = lab.cni("ADD", "c1", &ns, &missing);
    assert_eq!(out.code(), 7);
    assert!(out.msg().contains("no-such-ipam"), "{}", out.stdout);
    assert_eq!(lab.host_links(), ["kbr0"]);
}
