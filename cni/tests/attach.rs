//! knet-cni attaching real network namespaces (as root): ADD/CHECK/DEL results, traffic between containers
//! and the gateway (inside the test's namespaces only), double DEL, DEL after the namespace is gone, CHECK
//! after tampering, ADD rollback, range exhaustion, STATUS, GC and IPv6.

mod common;

use common::{with_prev, Lab};
use serde_json::{json, Value};

fn v4(lab: &Lab, name: &str) -> Value {
    lab.conf("1.1.0", name, json!({"ranges": [[{"subnet": "10.244.1.0/24"}]]}))
}

#[test]
fn add_check_del_and_double_del() {
    if !common::can_run("add_check_del_and_double_del") {
        return;
    }
    let mut lab = Lab::new();
    let ns = lab.container();
    let conf = v4(&lab, "pods");
    let out = lab.cni("ADD", "c1", &ns, &conf);
    let r = out.result().clone();
    assert_eq!(r["cniVersion"], json!("1.1.0"));
    let ifs = r["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 3);
    assert_eq!(ifs[0]["name"], json!("kbr0"));
    assert!(ifs[1]["name"].as_str().unwrap().starts_with("veth"));
    assert_eq!(ifs[2]["name"], json!("eth0"));
    assert_eq!(ifs[2]["sandbox"], json!(ns.to_str().unwrap()));
    assert_eq!(r["ips"], json!([{"interface": 2, "address": "10.244.1.2/24", "gateway": "10.244.1.1"}]));
    assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}]));

    // What the kernel has matches the result.
    let eth0 = lab.ct_ip(0, &["-o", "addr", "show", "dev", "eth0"]);
    assert!(eth0.contains("inet 10.244.1.2/24"), "{eth0}");
    let mac = ifs[2]["mac"].as_str().unwrap();
    assert!(lab.ct_ip(0, &["link", "show", "eth0"]).contains(mac));
    assert!(lab.ct_ip(0, &["route"]).contains("default via 10.244.1.1 dev eth0"));
    let veth = ifs[1]["name"].as_str().unwrap();
    assert!(lab.host_ip(&["link", "show", veth]).contains("master kbr0"));
    assert!(lab.host_ip(&["addr", "show", "kbr0"]).contains("inet 10.244.1.1/24"));
    assert_eq!(lab.leases("pods"), ["10.244.1.2"]);
    let lease = std::fs::read_to_string(lab.data_dir.path().join("pods/10.244.1.2")).unwrap();
    assert_eq!(lease, "c1\r\neth0");
    assert!(lab.ping(0, "10.244.1.1"), "container cannot reach its gateway");

    let check = lab.cni("CHECK", "c1", &ns, &with_prev(&conf, &r));
    assert!(check.ok && check.stdout.trim().is_empty(), "CHECK: {}", check.stdout);

    // A second ADD of the same attachment is refused and leaves the first intact.
    let again = lab.cni("ADD", "c1", &ns, &conf);
    assert_eq!(again.code(), 103, "{}", again.stdout);
    assert!(lab.cni("CHECK", "c1", &ns, &with_prev(&conf, &r)).ok);

    for round in 0..2 {
        let del = lab.cni("DEL", "c1", &ns, &with_prev(&conf, &r));
        assert!(del.ok && del.stdout.trim().is_empty(), "DEL #{round}: {}", del.stdout);
    }
    assert!(lab.leases("pods").is_empty());
    assert_eq!(lab.host_links(), ["kbr0"]);
    assert!(!lab.ct_ip(0, &["link"]).contains("eth0"));
}

#[test]
fn two_containers_on_one_bridge_reach_each_other() {
    if !common::can_run("two_containers_on_one_bridge_reach_each_other") {
        return;
    }
    let mut lab = Lab::new();
    let a = lab.container();
    let b = lab.container();
    let conf = v4(&lab, "pods");
    let ra = lab.cni("ADD", "a", &a, &conf).result().clone();
    let rb = lab.cni("ADD", "b", &b, &conf).result().clone();
    assert_eq!(ra["ips"][0]["address"], json!("10.244.1.2/24"));
    assert_eq!(rb["ips"][0]["address"], json!("10.244.1.3/24"));
    assert!(lab.ping(0, "10.244.1.3"));
    assert!(lab.ping(1, "10.244.1.2"));
    assert!(lab.ping(1, "10.244.1.1"));
    assert!(lab.cni("DEL", "a", &a, &conf).ok);
    assert!(!lab.ping(1, "10.244.1.2"));
}

#[test]
fn del_after_the_namespace_is_gone() {
    if !common::can_run("del_after_the_namespace_is_gone") {
        return;
    }
    let mut lab = Lab::new();
    let ns = lab.container();
    let conf = v4(&lab, "pods");
    lab.cni("ADD", "c1", &ns, &conf).result();
    // A process still holds the namespace, so its veth survives `ip netns delete`: DEL must remove the host end.
    let mut holder = lab.containers[0].command("sleep").unwrap().arg("30").spawn().unwrap();
    lab.containers[0].delete().unwrap();
    assert_eq!(lab.host_links().len(), 2, "{:?}", lab.host_links());
    let del = lab.cni("DEL", "c1", &ns, &conf);
    assert!(del.ok, "{}", del.stdout);
    assert_eq!(lab.host_links(), ["kbr0"]);
    assert!(lab.leases("pods").is_empty());
    let _ = holder.kill();
    let _ = holder.wait();

    // And with nothing holding it (the kernel removed the veth with the namespace), and with no CNI_NETNS.
    let ns2 = lab.container();
    lab.cni("ADD", "c2", &ns2, &conf).result();
    lab.containers[1].delete().unwrap();
    assert!(lab.cni("DEL", "c2", &ns2, &conf).ok);
    assert!(lab.cni("DEL", "c2", std::path::Path::new(""), &conf).ok);
    assert!(lab.leases("pods").is_empty());
    assert_eq!(lab.host_links(), ["kbr0"]);
}

#[test]
fn check_fails_after_tampering() {
    if !common::can_run("check_fails_after_tampering") {
        return;
    }
    let mut lab = Lab::new();
    let ns = lab.container();
    let conf = v4(&lab, "pods");
    let r = lab.cni("ADD", "c1", &ns, &conf).result().clone();
    let check = |lab: &Lab| lab.cni("CHECK", "c1", &ns, &with_prev(&conf, &r));
    assert!(check(&lab).ok);

    lab.ct_ip(0, &["route", "del", "default"]);
    let out = check(&lab);
    assert_eq!(out.code(), 101);
    assert!(out.msg().contains("0.0.0.0/0"), "{}", out.stdout);
    lab.ct_ip(0, &["route", "add", "default", "via", "10.244.1.1"]);
    assert!(check(&lab).ok);

    lab.ct_ip(0, &["addr", "del", "10.244.1.2/24", "dev", "eth0"]);
    assert!(check(&lab).msg().contains("10.244.1.2/24"));
    lab.ct_ip(0, &["addr", "add", "10.244.1.2/24", "dev", "eth0"]);
    lab.ct_ip(0, &["route", "replace", "default", "via", "10.244.1.1"]);
    assert!(check(&lab).ok, "{}", check(&lab).stdout);

    lab.ct_ip(0, &["link", "set", "eth0", "address", "02:00:00:00:00:99"]);
    assert!(check(&lab).msg().contains("Mac"), "{}", check(&lab).stdout);
    let mac = r["interfaces"][2]["mac"].as_str().unwrap();
    lab.ct_ip(0, &["link", "set", "eth0", "address", mac]);
    assert!(check(&lab).ok);

    std::fs::remove_file(lab.data_dir.path().join("pods/10.244.1.2")).unwrap();
    assert_eq!(check(&lab).code(), 101);
    std::fs::write(lab.data_dir.path().join("pods/10.244.1.2"), "c1\r\neth0").unwrap();

    let veth = r["interfaces"][1]["name"].as_str().unwrap();
    lab.host_ip(&["link", "set", veth, "nomaster"]);
    assert!(check(&lab).msg().contains("veth"), "{}", check(&lab).stdout);
}

#[test]
fn add_rolls_back_on_failure() {
    if !common::can_run("add_rolls_back_on_failure") {
        return;
    }
    let mut lab = Lab::new();
    let ns = lab.container();
    let conf = v4(&lab, "pods");
    for step in knet_cni::fault::STEPS {
        let out = lab.exec(
            common::KNET_CNI,
            "ADD",
            common::Att { id: "c1", netns: &ns, ifname: "eth0" },
            &conf,
            &[(knet_cni::fault::ENV, step)],
        );
        assert!(!out.ok, "{step}: {}", out.stdout);
        assert!(out.msg().contains(step), "{step}: {}", out.stdout);
        assert_eq!(lab.host_links(), ["kbr0"], "after a failure at {step}");
        assert!(!lab.ct_ip(0, &["link"]).contains("eth0"), "after a failure at {step}");
        assert!(lab.leases("pods").is_empty(), "after a failure at {step}: {:?}", lab.leases("pods"));
    }
    // A real failure: a route whose gateway is not on any subnet of the container.
    let mut bad = conf.clone();
    bad["ipam"]["routes"] = json!([{"dst": "192.0.2.0/24", "gw": "198.51.100.1"}]);
    let out = lab.cni("ADD", "c1", &ns, &bad);
    assert_eq!(out.code(), 100, "{}", out.stdout);
    assert!(out.msg().contains("192.0.2.0/24"), "{}", out.stdout);
    assert_eq!(lab.host_links(), ["kbr0"]);
    assert!(lab.leases("pods").is_empty());
    // Afterwards the attachment can be added normally.
    assert!(lab.cni("ADD", "c1", &ns, &conf).ok);
}

#[test]
fn range_exhaustion_status_and_gc() {
    if !common::can_run("range_exhaustion_status_and_gc") {
        return;
    }
    let mut lab = Lab::new();
    let conf = lab.conf("1.1.0", "small", json!({"ranges": [[{"subnet": "10.244.2.0/29"}]]}));
    let status = |lab: &Lab| lab.cni("STATUS", "", std::path::Path::new(""), &conf);
    assert!(status(&lab).ok);
    let mut nss = Vec::new();
    for i in 0..5 {
        let ns = lab.container();
        lab.cni("ADD", &format!("c{i}"), &ns, &conf).result();
        nss.push(ns);
    }
    let ns = lab.container();
    let out = lab.cni("ADD", "c5", &ns, &conf);
    assert_eq!(out.code(), 102);
    assert!(out.msg().contains("no IP addresses available in range set: 10.244.2.1-10.244.2.6"), "{}", out.stdout);
    assert_eq!(lab.host_links().len(), 6, "the failed ADD left a veth: {:?}", lab.host_links());
    let st = status(&lab);
    assert_eq!(st.code(), 50, "{}", st.stdout);

    // GC: only c1 and c3 are still valid.
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] =
        json!([{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c3", "ifname": "eth0"}]);
    let out = lab.cni("GC", "", std::path::Path::new(""), &gc);
    assert!(out.ok && out.stdout.trim().is_empty(), "{}", out.stdout);
    assert_eq!(lab.leases("small"), ["10.244.2.3", "10.244.2.5"]);
    assert!(status(&lab).ok);
    assert!(lab.cni("ADD", "c5", &ns, &conf).ok);
}

#[test]
fn status_reports_an_unusable_bridge() {
    if !common::can_run("status_reports_an_unusable_bridge") {
        return;
    }
    let lab = Lab::new();
    let conf = v4(&lab, "pods");
    let status = |lab: &Lab| lab.cni("STATUS", "", std::path::Path::new(""), &conf);
    lab.host_ip(&["link", "add", "kbr0", "type", "veth", "peer", "name", "kbr0p"]);
    assert_eq!(status(&lab).code(), 50);
    lab.host_ip(&["link", "del", "kbr0"]);
    lab.host_ip(&["link", "add", "kbr0", "type", "bridge"]);
    assert_eq!(status(&lab).code(), 51);
    lab.host_ip(&["link", "set", "kbr0", "up"]);
    assert!(status(&lab).ok);
}

#[test]
fn ipv6_and_dual_stack() {
    if !common::can_run("ipv6_and_dual_stack") {
        return;
    }
    let mut lab = Lab::new();
    let a = lab.container();
    let b = lab.container();
    let conf = lab.conf(
        "1.0.0",
        "dual",
        json!({"ranges": [[{"subnet": "10.244.3.0/24"}], [{"subnet": "fd00:10:244:3::/64"}]]}),
    );
    let ra = lab.cni("ADD", "a", &a, &conf).result().clone();
    lab.cni("ADD", "b", &b, &conf).result();
    assert_eq!(ra["cniVersion"], json!("1.0.0"));
    assert_eq!(
        ra["ips"],
        json!([{"interface": 2, "address": "10.244.3.2/24", "gateway": "10.244.3.1"},
               {"interface": 2, "address": "fd00:10:244:3::2/64", "gateway": "fd00:10:244:3::1"}])
    );
    assert_eq!(
        ra["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": "10.244.3.1"}, {"dst": "::/0", "gw": "fd00:10:244:3::1"}])
    );
    // No DAD wait: the address is usable at once (not tentative).
    let addrs = lab.ct_ip(0, &["-6", "addr", "show", "dev", "eth0"]);
    assert!(
        addrs.contains("fd00:10:244:3::2/64") && !addrs.contains("fd00:10:244:3::2/64 scope global tentative"),
        "{addrs}"
    );
    assert!(lab.ping(0, "fd00:10:244:3::3"), "v6 pod to pod");
    assert!(lab.ping(1, "fd00:10:244:3::1"), "v6 pod to gateway");
    assert!(lab.cni("CHECK", "a", &a, &with_prev(&conf, &ra)).ok);
    assert!(lab.cni("DEL", "a", &a, &conf).ok);
    assert_eq!(lab.leases("dual"), ["10.244.3.3", "fd00:10:244:3::3"]);
}

#[test]
fn bridge_options_mtu_hairpin_and_mac() {
    if !common::can_run("bridge_options_mtu_hairpin_and_mac") {
        return;
    }
    let mut lab = Lab::new();
    let ns = lab.container();
    let mut conf = v4(&lab, "pods");
    conf["mtu"] = json!(1400);
    conf["hairpinMode"] = json!(true);
    conf["runtimeConfig"] = json!({"mac": "02:42:ac:11:00:07"});
    let r = lab.cni("ADD", "c1", &ns, &conf).result().clone();
    assert_eq!(r["interfaces"][2]["mac"], json!("02:42:ac:11:00:07"));
    assert_eq!(r["interfaces"][2]["mtu"], json!(1400));
    let eth0 = lab.ct_ip(0, &["link", "show", "eth0"]);
    assert!(eth0.contains("mtu 1400") && eth0.contains("02:42:ac:11:00:07"), "{eth0}");
    let veth = r["interfaces"][1]["name"].as_str().unwrap();
    let port = lab.host_ip(&["-d", "link", "show", veth]);
    assert!(port.contains("mtu 1400") && port.contains("hairpin on"), "{port}");
    assert!(lab.host_ip(&["link", "show", "kbr0"]).contains("mtu 1400"));
}
