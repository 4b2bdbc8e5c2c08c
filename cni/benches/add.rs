//! CNI ADD/DEL latency, knet-cni against Debian's bridge + host-local (/usr/lib/cni) in the same run, with
//! equivalent configurations (a bridge with the default gateway, host-local addresses from a /24, spec
//! 1.0.0). Each cycle is timed as a runtime sees it: fork/exec of the plugin with the configuration on stdin
//! until it exits. The plugins run in a network namespace made for the benchmark ("host") and attach one
//! container namespace; the two plugins alternate cycle by cycle. Needs root.
//!
//! `cargo bench -p knet-cni` (cycles: `KNET_CNI_BENCH_CYCLES`, default 200).

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use knet_component_base::netns::{self, Netns};
use serde_json::{json, Value};

const KNET_CNI: &str = env!("CARGO_BIN_EXE_knet-cni");
const REFERENCE: &str = "/usr/lib/cni/bridge";

struct Cleanup(Vec<Netns>, Option<tempfile::TempDir>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = ns.delete();
        }
    }
}

fn invoke(host: &Netns, plugin: &str, command: &str, id: &str, netns: &str, conf: &Value) -> Result<Duration, String> {
    let mut cmd = host.command(plugin).map_err(|e| e.to_string())?;
    cmd.env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let input = conf.to_string();
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("spawning {plugin}: {e}"))?;
    child.stdin.take().ok_or("no stdin")?.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(format!("{plugin} {command} failed: {}", String::from_utf8_lossy(&out.stdout)));
    }
    Ok(took)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    Stats { p50: percentile(&v, 0.5), p99: percentile(&v, 0.99), mean }
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() || !std::path::Path::new(REFERENCE).exists() {
        eprintln!("add bench: needs root and Debian's containernetworking-plugins in /usr/lib/cni; skipped");
        return;
    }
    let cycles: usize = std::env::var("KNET_CNI_BENCH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    netns::sweep("kncni-");
    let id = format!("kncni-{}-bench", std::process::id());
    let host = Netns::create(format!("{id}-host")).expect("creating the host namespace");
    let mut cleanup = Cleanup(vec![host.clone()], None);
    let ct = Netns::create(format!("{id}-ct")).expect("creating the container namespace");
    cleanup.0.push(ct.clone());
    let data = tempfile::tempdir().expect("tempdir");
    let ns_path = ct.path().display().to_string();
    let conf = |plugin: &str, bridge: &str, subnet: &str| {
        json!({"cniVersion": "1.0.0", "name": format!("bench-{bridge}"), "type": plugin, "bridge": bridge,
               "isDefaultGateway": true,
               "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": data.path()}})
    };
    let knet = conf("knet-cni", "kbr-knet", "10.250.1.0/24");
    let reference = conf("bridge", "kbr-ref", "10.250.2.0/24");
    let mut samples = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    let mut floor = Vec::new();
    let warmup = 10;
    for i in 0..cycles + warmup {
        for (k, (plugin, conf)) in [(KNET_CNI, &knet), (REFERENCE, &reference)].into_iter().enumerate() {
            let cid = format!("bench-{k}-{i}");
            let add = invoke(&host, plugin, "ADD", &cid, &ns_path, conf).unwrap_or_else(|e| panic!("{e}"));
            let del = invoke(&host, plugin, "DEL", &cid, &ns_path, conf).unwrap_or_else(|e| panic!("{e}"));
            if i >= warmup {
                samples[k].0.push(add);
                samples[k].1.push(del);
            }
        }
        // The cost of starting any program the way the plugins are started (fork, setns, exec, exit).
        let t = invoke(&host, "/bin/cat", "VERSION", "x", &ns_path, &json!({})).unwrap_or_else(|e| panic!("{e}"));
        if i >= warmup {
            floor.push(t);
        }
    }
    cleanup.1 = Some(data);
    let [(knet_add, knet_del), (ref_add, ref_del)] = samples;
    let (ka, kd, ra, rd) = (stats(knet_add), stats(knet_del), stats(ref_add), stats(ref_del));
    let fl = stats(floor);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!("CNI ADD/DEL, {cycles} cycles each, alternating, fork/exec to exit (spec 1.0.0, bridge + host-local /24)");
    println!("{:<36} {:>10} {:>10} {:>10}", "", "p50", "p99", "mean");
    for (name, s) in [
        ("knet-cni ADD", &ka),
        ("reference bridge+host-local ADD", &ra),
        ("knet-cni DEL", &kd),
        ("reference bridge+host-local DEL", &rd),
        ("floor: start /bin/cat the same way", &fl),
    ] {
        println!("{name:<36} {:>10} {:>10} {:>10}", ms(s.p50), ms(s.p99), ms(s.mean));
    }
    let ratio = |r: Duration, k: Duration| r.as_secs_f64() / k.as_secs_f64();
    println!(
        "reference / knet-cni: ADD p50 {:.1}x, p99 {:.1}x; DEL p50 {:.1}x, p99 {:.1}x",
        ratio(ra.p50, ka.p50),
        ratio(ra.p99, ka.p99),
        ratio(rd.p50, kd.p50),
        ratio(rd.p99, kd.p99)
    );
    println!(
        "goal: knet-cni ADD p50 <= 10 ms ({}) and faster than the reference ({})",
        if ka.p50 <= Duration::from_millis(10) { "met" } else { "MISSED" },
        if ka.p50 < ra.p50 { "met" } else { "MISSED" }
    );
}
