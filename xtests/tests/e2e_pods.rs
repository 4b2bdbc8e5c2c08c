//! Issue 4, test 3 (root), and the seed flows that need real pods: on one real 2-worker `knet-lab`, the seed
//! tutorials' pod checks through the real kubectl v1.34, compared with the seed's own output (the pod's IP and
//! name substituted):
//! - seed 001 "配置Pod的 /etc/hosts": `kubectl run nginx --image nginx`, `kubectl exec nginx -- cat /etc/hosts`;
//!   the `hostaliases-pod` (Completed, `kubectl logs`); hostname/subdomain (`busybox1`) and `hostname`;
//! - seed 001 "Pod 的 DNS Policy / DNS 配置": `/etc/resolv.conf` for ClusterFirst (also in another namespace),
//!   Default, ClusterFirstWithHostNet (the seed's hostNetwork `busybox`), hostNetwork with ClusterFirst, None
//!   (the seed's `dns-example`) and ClusterFirst merged with a dnsConfig;
//! - seeds 000/001 "环境变量": `kubectl exec POD -- printenv | grep SERVICE` without the Service for pods made
//!   before it, with it (all seven variables per port) after `kubectl delete pods -l run=my-nginx`, and
//!   `enableServiceLinks: false`; `kubectl get pods -o wide` shows the replicas' real IPs on both nodes, each
//!   serving nginx to the other node, and `kubectl get ep my-nginx` lists them;
//! - `kubectl exec -it` (terminal size, typed input) and `kubectl logs -f` through the lab's API server;
//! - seeds 001/002: `kubectl run curl --image=radial/busyboxplus:curl -i --tty --rm` on a terminal the test
//!   types into; seed 004: `kubectl port-forward deploy/… 8080:80` then curl 127.0.0.1, and `kubectl exec
//!   deploy/sleep-1 -- ping -c 2 <sleep-2's IP>`, whose replacement gets a new IP the old one no longer answers.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use xtests::e2e::{ok, pty_kubectl, table, wait_ready, Checks};
use xtests::lab::{require_root, Lab, LabOptions};
use xtests::{wait, Kubectl};

fn seed(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/seeds").join(file).display().to_string()
}

/// Seed 001's `kubectl exec nginx -- cat /etc/hosts` (pod `nginx` at 10.200.0.4).
const SEED_HOSTS: &str = "# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
10.200.0.4\tnginx
";

/// Seed 001's `kubectl logs hostaliases-pod` (the pod at 10.200.0.5).
const SEED_HOST_ALIASES: &str = "# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
10.200.0.5\thostaliases-pod

# Entries added by HostAliases.
127.0.0.1\tfoo.local\tbar.local
10.1.2.3\tfoo.remote\tbar.remote
";

/// Seed 001's `kubectl exec -it dns-example -- cat /etc/resolv.conf`.
const SEED_DNS_EXAMPLE: &str = "nameserver 1.2.3.4
search ns1.svc.cluster-domain.example my.dns.search.suffix
options ndots:2 edns0
";

/// The lab's cluster DNS Service and the workers' upstream (the outside host), which `Default` pods inherit.
const CLUSTER_DNS: &str = "10.96.0.10";
const NODE_NAMESERVER: &str = "192.168.56.200";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_pod_checks_on_a_lab() -> Result<()> {
    let test = "seed_pod_checks_on_a_lab";
    if !require_root(test) {
        return Ok(());
    }
    let start = Instant::now();
    let lab = Lab::up(LabOptions::default()).await?;
    eprintln!("{test}: lab up in {:.1?}", start.elapsed());
    let k = lab.kubectl();
    let mut checks = Checks::new(test);
    checks.run("seed 001: /etc/hosts of `kubectl run nginx`, hostname", hosts_file(&k)).await;
    checks.run("seeds 001/002: kubectl run -i --tty --rm", run_interactive(&lab, &k)).await;
    checks.run("seed 001: hostAliases, Completed, kubectl logs", host_aliases(&k)).await;
    checks.run("kubectl exec -it and kubectl logs -f through the API server", exec_tty_and_follow(&lab, &k)).await;
    checks.run("seed 001: hostname and subdomain", hostname_subdomain(&k)).await;
    checks.run("seed 001: resolv.conf for every dnsPolicy", resolv_conf(&k)).await;
    checks.run("seeds 000/001: service environment variables", service_env(&lab, &k)).await;
    checks.run("seed 004: kubectl port-forward deploy/… 8080:80", port_forward(&k)).await;
    checks.run("seed 004: ping a pod by IP, replacement gets a new IP", ping_and_replace(&k)).await;
    checks.run("seeds 001/002: the --rm pod is deleted", run_interactive_pod_gone(&k)).await;
    if !checks.all_ok() {
        eprintln!("{}", lab.status().unwrap_or_default());
    }
    eprintln!("{test}: wall time {:.1?}", start.elapsed());
    checks.finish()
}

/// The pod's IP (`status.podIP`).
fn pod_ip(k: &Kubectl, ns: &str, pod: &str) -> Result<String> {
    let ip = ok(k, &["get", "pod", "-n", ns, pod, "-o", "jsonpath={.status.podIP}"])?;
    ensure!(!ip.is_empty(), "pod {ns}/{pod} has no IP");
    Ok(ip)
}

/// Compares line by line, so a failure names the first differing line.
fn same_lines(what: &str, got: &str, want: &str) -> Result<()> {
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        ensure!(g == w, "{what}: line {} is {g:?}, the seed has {w:?}\n--- got:\n{got}--- want:\n{want}", i + 1);
    }
    ensure!(
        got.lines().count() == want.lines().count() && got.ends_with('\n'),
        "{what}: {} lines, the seed has {}\n--- got:\n{got}--- want:\n{want}",
        got.lines().count(),
        want.lines().count()
    );
    Ok(())
}

async fn wait_phase(k: &Kubectl, pod: &str, phase: &str) -> Result<()> {
    wait::until(Duration::from_secs(60), &format!("pod {pod} to be {phase}"), || async {
        let got = ok(k, &["get", "pod", pod, "-o", "jsonpath={.status.phase}"])?;
        if got == phase {
            Ok(Some(()))
        } else {
            bail!("phase {got:?}")
        }
    })
    .await
}

async fn hosts_file(k: &Kubectl) -> Result<()> {
    // Seed: `kubectl run nginx --image nginx --generator=run-pod/v1` (kubectl v1.34 has no --generator).
    ok(k, &["run", "nginx", "--image", "nginx"])?;
    wait_ready(k, "default", &["pod/nginx"], Duration::from_secs(60)).await?;
    let ip = pod_ip(k, "default", "nginx")?;
    let wide = table(&ok(k, &["get", "pods", "nginx", "-o", "wide"])?);
    ensure!(wide.len() == 1 && wide[0]["IP"] == ip && wide[0]["STATUS"] == "Running", "{wide:?}");
    let hosts = ok(k, &["exec", "nginx", "--", "cat", "/etc/hosts"])?;
    same_lines("/etc/hosts", &hosts, &SEED_HOSTS.replace("10.200.0.4", &ip))?;
    let name = ok(k, &["exec", "nginx", "--", "hostname"])?;
    ensure!(name == "nginx\n", "hostname {name:?}");
    // The nginx behind it serves the welcome page on the pod's IP.
    let page = ok(k, &["exec", "nginx", "--", "curl", "-sS", "--max-time", "5", &format!("http://{ip}/")])?;
    ensure!(page.contains("Welcome to nginx!"), "{page}");
    Ok(())
}

async fn host_aliases(k: &Kubectl) -> Result<()> {
    ok(k, &["apply", "-f", &seed("pod-host-aliases.yaml")])?;
    wait_phase(k, "hostaliases-pod", "Succeeded").await?;
    let ip = pod_ip(k, "default", "hostaliases-pod")?;
    // `kubectl get pod --output=wide`: 0/1 Completed with its IP.
    let rows = table(&ok(k, &["get", "pod", "hostaliases-pod", "--output=wide"])?);
    let row = rows.first().context("no row")?;
    ensure!((row["READY"].as_str(), row["STATUS"].as_str()) == ("0/1", "Completed"), "{row:?}");
    ensure!(row["IP"] == ip, "{row:?}");
    let logs = ok(k, &["logs", "hostaliases-pod"])?;
    same_lines("kubectl logs hostaliases-pod", &logs, &SEED_HOST_ALIASES.replace("10.200.0.5", &ip))
}

async fn hostname_subdomain(k: &Kubectl) -> Result<()> {
    ok(k, &["apply", "-f", &seed("service-headless-default-subdomain.yaml")])?;
    ok(k, &["apply", "-f", &seed("pod-busybox1-hostname-subdomain.yaml")])?;
    wait_ready(k, "default", &["pod/busybox1"], Duration::from_secs(60)).await?;
    let ip = pod_ip(k, "default", "busybox1")?;
    let name = ok(k, &["exec", "busybox1", "--", "hostname"])?;
    ensure!(name == "busybox-1\n", "hostname {name:?}");
    // The pod's own entry is its FQDN and hostname (kubelet's format).
    let hosts = ok(k, &["exec", "busybox1", "--", "cat", "/etc/hosts"])?;
    let own = hosts.lines().last().context("empty /etc/hosts")?;
    ensure!(own == format!("{ip}\tbusybox-1.default-subdomain.default.svc.cluster.local\tbusybox-1"), "{hosts}");
    Ok(())
}

/// A sleeping busybox pod `name` in `ns` with extra spec lines (indented by 2).
fn sleeper(name: &str, ns: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}  \
         containers: [{{name: c, image: busybox, command: [sleep, \"3600\"]}}]\n  terminationGracePeriodSeconds: 1\n"
    )
}

/// (nameservers, search domains, options) of a resolv.conf.
fn parse_resolv(text: &str) -> (Vec<String>, Vec<String>, BTreeSet<String>) {
    let (mut ns, mut search, mut options) = (Vec::new(), Vec::new(), BTreeSet::new());
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => ns.extend(words.map(str::to_string)),
            Some("search") => search.extend(words.map(str::to_string)),
            Some("options") => options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    (ns, search, options)
}

async fn resolv_conf(k: &Kubectl) -> Result<()> {
    ok(k, &["create", "namespace", "dns-other"])?;
    let cluster_first_spec = "";
    let pods = [
        sleeper("dns-cluster-first", "default", cluster_first_spec),
        sleeper("dns-cluster-first", "dns-other", cluster_first_spec),
        sleeper("dns-default", "default", "  dnsPolicy: Default\n"),
        sleeper("dns-host-net", "default", "  hostNetwork: true\n"),
        sleeper(
            "dns-merged",
            "default",
            "  dnsConfig:\n    nameservers: [1.2.3.4]\n    searches: [my.dns.search.suffix]\n    \
             options: [{name: ndots, value: \"2\"}, {name: edns0}]\n",
        ),
    ];
    let yaml = pods.join("---\n");
    k.apply_yaml(&yaml)?.ok()?;
    ok(k, &["apply", "-f", &seed("pod-dns-config.yaml"), "-f", &seed("pod-busybox-host-network.yaml")])?;
    wait_ready(
        k,
        "default",
        &["pod/dns-cluster-first", "pod/dns-default", "pod/dns-host-net", "pod/dns-merged", "pod/dns-example"],
        Duration::from_secs(60),
    )
    .await?;
    wait_ready(k, "default", &["pod/busybox"], Duration::from_secs(60)).await?;
    wait_ready(k, "dns-other", &["pod/dns-cluster-first"], Duration::from_secs(60)).await?;
    let cat = |ns: &str, pod: &str| ok(k, &["exec", "-n", ns, pod, "--", "cat", "/etc/resolv.conf"]);

    // None: exactly the seed's file.
    same_lines("dns-example's resolv.conf", &cat("default", "dns-example")?, SEED_DNS_EXAMPLE)?;

    let cluster = |ns: &str| {
        format!("nameserver {CLUSTER_DNS}\nsearch {ns}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n")
    };
    // ClusterFirst (the default), in two namespaces.
    same_lines("ClusterFirst", &cat("default", "dns-cluster-first")?, &cluster("default"))?;
    same_lines("ClusterFirst in dns-other", &cat("dns-other", "dns-cluster-first")?, &cluster("dns-other"))?;
    // ClusterFirstWithHostNet: the seed's hostNetwork busybox gets the cluster's DNS; it runs on its node's
    // network (its IP is the node's).
    same_lines("ClusterFirstWithHostNet", &cat("default", "busybox")?, &cluster("default"))?;
    let ip = pod_ip(k, "default", "busybox")?;
    ensure!(["192.168.56.11", "192.168.56.12"].contains(&ip.as_str()), "hostNetwork pod IP {ip}");

    // Default, and hostNetwork with ClusterFirst (which falls back to Default): the node's resolver.
    for pod in ["dns-default", "dns-host-net"] {
        let text = cat("default", pod)?;
        let (ns, search, _) = parse_resolv(&text);
        ensure!(ns == [NODE_NAMESERVER], "{pod}: nameservers {ns:?}, want the node's\n{text}");
        ensure!(!search.iter().any(|s| s.ends_with("cluster.local")), "{pod}: cluster search domains\n{text}");
    }

    // ClusterFirst merged with dnsConfig: nameservers and searches appended, options merged (dnsConfig wins).
    let text = cat("default", "dns-merged")?;
    let (ns, search, options) = parse_resolv(&text);
    ensure!(ns == [CLUSTER_DNS, "1.2.3.4"], "merged nameservers {ns:?}\n{text}");
    let want = ["default.svc.cluster.local", "svc.cluster.local", "cluster.local", "my.dns.search.suffix"];
    ensure!(search == want, "merged search {search:?}\n{text}");
    ensure!(options == BTreeSet::from(["ndots:2".to_string(), "edns0".to_string()]), "merged options\n{text}");
    Ok(())
}

/// `kubectl exec POD -- printenv | grep SERVICE` (the grep is the user's shell's, as in the seed).
fn service_vars(k: &Kubectl, pod: &str) -> Result<BTreeSet<String>> {
    let env = ok(k, &["exec", pod, "--", "printenv"])?;
    Ok(env.lines().filter(|l| l.contains("SERVICE")).map(str::to_string).collect())
}

fn pods_of(k: &Kubectl, selector: &str) -> Result<Vec<String>> {
    let out = ok(k, &["get", "pods", "-l", selector, "-o", "jsonpath={.items[*].metadata.name}"])?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

async fn service_env(lab: &Lab, k: &Kubectl) -> Result<()> {
    let kubernetes: BTreeSet<String> =
        ["KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443"]
            .into_iter()
            .map(str::to_string)
            .collect();
    // The pods first, then the Service (as the seed's tutorial did).
    ok(k, &["apply", "-f", &seed("deployment-my-nginx.yaml")])?;
    ok(k, &["rollout", "status", "deployment/my-nginx", "--timeout=60s"])?;
    ok(k, &["apply", "-f", &seed("service-my-nginx.yaml")])?;
    let cluster_ip = ok(k, &["get", "svc", "my-nginx", "-o", "jsonpath={.spec.clusterIP}"])?;
    let old = pods_of(k, "run=my-nginx")?;
    ensure!(old.len() == 2, "{old:?}");
    for pod in &old {
        let vars = service_vars(k, pod)?;
        ensure!(vars == kubernetes, "{pod} (made before the Service): {vars:?}");
    }

    // `kubectl delete pods -l run=my-nginx`: the replacements know the Service.
    ok(k, &["delete", "pods", "-l", "run=my-nginx"])?;
    let new = wait::until(Duration::from_secs(60), "two new my-nginx pods", || async {
        let pods = pods_of(k, "run=my-nginx")?;
        Ok((pods.len() == 2 && pods.iter().all(|p| !old.contains(p))).then_some(pods))
    })
    .await?;
    let names: Vec<String> = new.iter().map(|p| format!("pod/{p}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    wait_ready(k, "default", &refs, Duration::from_secs(60)).await?;
    let mut want = kubernetes.clone();
    want.insert(format!("MY_NGINX_SERVICE_HOST={cluster_ip}"));
    want.insert("MY_NGINX_SERVICE_PORT=80".to_string());
    for pod in &new {
        let vars = service_vars(k, pod)?;
        ensure!(vars == want, "{pod} (made after the Service): {vars:?}");
    }
    // All seven per port (Docker links style).
    let env = ok(k, &["exec", &new[0], "--", "printenv"])?;
    let mine: BTreeSet<&str> = env.lines().filter(|l| l.starts_with("MY_NGINX_")).collect();
    let seven: BTreeSet<String> = [
        format!("MY_NGINX_SERVICE_HOST={cluster_ip}"),
        "MY_NGINX_SERVICE_PORT=80".into(),
        format!("MY_NGINX_PORT=tcp://{cluster_ip}:80"),
        format!("MY_NGINX_PORT_80_TCP=tcp://{cluster_ip}:80"),
        "MY_NGINX_PORT_80_TCP_PROTO=tcp".into(),
        "MY_NGINX_PORT_80_TCP_PORT=80".into(),
        format!("MY_NGINX_PORT_80_TCP_ADDR={cluster_ip}"),
    ]
    .into_iter()
    .collect();
    let mine: BTreeSet<String> = mine.into_iter().map(str::to_string).collect();
    ensure!(mine == seven, "MY_NGINX_* variables: {mine:?}");

    // `kubectl get pods -l run=my-nginx -o wide`: Running, real IPs, on both nodes; each IP serves nginx
    // to the other node.
    let text = ok(k, &["get", "pods", "-l", "run=my-nginx", "-o", "wide"])?;
    let rows = table(&text);
    let nodes: BTreeSet<&str> = rows.iter().map(|r| r["NODE"].as_str()).collect();
    ensure!(nodes == BTreeSet::from(["worker-1", "worker-2"]), "not spread over both nodes:\n{text}");
    for row in &rows {
        ensure!(row["STATUS"] == "Running", "{text}");
        let other = if row["NODE"] == "worker-1" { "worker-2" } else { "worker-1" };
        let (okay, page, err) =
            lab.exec(other, &["curl", "-sS", "--max-time", "5", &format!("http://{}/", row["IP"])])?;
        ensure!(okay && page.contains("Welcome to nginx!"), "{other} → {}: {page}{err}", row["IP"]);
    }

    // `kubectl get ep my-nginx` lists exactly these real pods.
    let want: BTreeSet<String> = rows.iter().map(|r| format!("{}:80", r["IP"])).collect();
    wait::until(Duration::from_secs(30), "ep my-nginx to list the new pods", || async {
        let ep = table(&ok(k, &["get", "ep", "my-nginx"])?);
        let got: BTreeSet<String> =
            ep.first().map(|r| r["ENDPOINTS"].split(',').map(str::to_string).collect()).unwrap_or_default();
        if got == want {
            Ok(Some(()))
        } else {
            bail!("endpoints {got:?}, pods {want:?}")
        }
    })
    .await?;

    // enableServiceLinks: false → only the kubernetes Service's variables.
    let spec = "  enableServiceLinks: false\n";
    k.apply_yaml(&sleeper("no-links", "default", spec))?.ok()?;
    wait_ready(k, "default", &["pod/no-links"], Duration::from_secs(60)).await?;
    let vars = service_vars(k, "no-links")?;
    ensure!(vars == kubernetes, "enableServiceLinks: false: {vars:?}");
    Ok(())
}

async fn run_interactive(lab: &Lab, k: &Kubectl) -> Result<()> {
    let target = pod_ip(k, "default", "nginx").unwrap_or_default();
    let mut term = pty_kubectl(lab, &["run", "curl", "--image=radial/busyboxplus:curl", "-i", "--tty", "--rm"])?;
    let at = term.expect_from(0, "If you don't see a command prompt, try pressing enter.", Duration::from_secs(60))?;
    // "Hit enter for command prompt".
    term.send("\r")?;
    let at = term.expect_from(at, "# ", Duration::from_secs(20))?;
    term.send("echo hi-$((6*7))\r")?;
    let at = term.expect_from(at, "hi-42", Duration::from_secs(20))?;
    if !target.is_empty() {
        term.send(&format!("curl -s http://{target}/ | grep -o 'Welcome to nginx!' | head -1\r"))?;
        term.expect_from(at, "Welcome to nginx!\r\n", Duration::from_secs(20))?;
    }
    term.send("exit\r")?;
    let status = term.wait(Duration::from_secs(60))?;
    ensure!(status.success(), "kubectl run exited with {status}; the terminal shows:\n{}", term.transcript());
    ensure!(term.transcript().contains("pod \"curl\" deleted"), "no deletion message:\n{}", term.transcript());
    Ok(())
}

async fn exec_tty_and_follow(lab: &Lab, k: &Kubectl) -> Result<()> {
    // `kubectl exec -it`: a terminal of kubectl's size, typed input read by the container. kubectl sends the
    // size once the streams are up, so the process may start before it applies (as with any kubelet): the
    // size is read a moment later.
    let script = "test -t 0 && echo IS-A-TTY; sleep 1; stty size; read x; echo got:$x";
    let mut term = pty_kubectl(lab, &["exec", "-it", "nginx", "--", "sh", "-c", script])?;
    let at = term.expect_from(0, "IS-A-TTY", Duration::from_secs(30))?;
    let at = term.expect_from(at, "24 80", Duration::from_secs(10))?;
    term.send("typed\r")?;
    term.expect_from(at, "got:typed", Duration::from_secs(10))?;
    let status = term.wait(Duration::from_secs(30))?;
    ensure!(status.success(), "kubectl exec -it exited with {status}:\n{}", term.transcript());

    // `kubectl logs -f`: lines arrive as the container prints them, and the stream ends when it exits.
    k.apply_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: counter}\nspec:\n  restartPolicy: Never\n  \
         containers: [{name: c, image: busybox, command: [sh, -c, 'for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.5; done']}]\n",
    )?
    .ok()?;
    wait::until(Duration::from_secs(30), "counter to run", || async {
        let phase = ok(k, &["get", "pod", "counter", "-o", "jsonpath={.status.phase}"])?;
        Ok((phase == "Running" || phase == "Succeeded").then_some(()))
    })
    .await?;
    let mut follow = k.spawn(&["logs", "-f", "counter"])?;
    let first = follow.wait_for_line(Duration::from_secs(20), |l| l.starts_with("line-"))?;
    let mut seen = vec![first];
    while let Some(line) = follow.next_line(Duration::from_secs(20))? {
        seen.push(line);
    }
    let n: usize = seen.first().and_then(|l| l.strip_prefix("line-")).and_then(|n| n.parse().ok()).unwrap_or(0);
    let want: Vec<String> = (n..=6).map(|i| format!("line-{i}")).collect();
    ensure!(seen == want, "kubectl logs -f printed {seen:?}");
    let all = ok(k, &["logs", "counter"])?;
    ensure!(all == (1..=6).map(|i| format!("line-{i}\n")).collect::<String>(), "{all:?}");
    Ok(())
}

/// `kubectl run --rm` deletes gracefully and does not wait: the pod goes once its grace period is over (the
/// restarted interactive sh ignores SIGTERM, as in any cluster, so that takes the default 30 s; this check
/// runs last so the others overlap it).
async fn run_interactive_pod_gone(k: &Kubectl) -> Result<()> {
    wait::until(Duration::from_secs(60), "the curl pod to be gone", || async {
        let out = k.run(&["get", "pod", "curl"])?;
        if !out.success() && out.stderr.contains("NotFound") {
            Ok(Some(()))
        } else {
            bail!("{}{}", out.stdout, out.stderr)
        }
    })
    .await
}

/// 8080 as in the seed, unless something on this machine listens there already.
fn local_port() -> Result<u16> {
    if std::net::TcpListener::bind("127.0.0.1:8080").is_ok() {
        return Ok(8080);
    }
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn port_forward(k: &Kubectl) -> Result<()> {
    ok(k, &["create", "deployment", "numbers-web", "--image=nginx", "--port=80"])?;
    ok(k, &["rollout", "status", "deployment/numbers-web", "--timeout=60s"])?;
    let port = local_port()?;
    let mut pf = k.spawn(&["port-forward", "deploy/numbers-web", &format!("{port}:80")])?;
    pf.wait_for_line(Duration::from_secs(30), |l| l.starts_with(&format!("Forwarding from 127.0.0.1:{port}")))?;
    for _ in 0..3 {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", &format!("http://127.0.0.1:{port}/")])
            .output()?;
        let page = String::from_utf8_lossy(&out.stdout);
        ensure!(page.contains("Welcome to nginx!"), "{page}{}", String::from_utf8_lossy(&out.stderr));
    }
    pf.kill();
    Ok(())
}

const SLEEPERS: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep-1}
spec:
  selector: {matchLabels: {app: sleep-1}}
  template:
    metadata: {labels: {app: sleep-1}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: sleep, image: busybox, command: [sleep, '100000']}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sleep-2}
spec:
  selector: {matchLabels: {app: sleep-2}}
  template:
    metadata: {labels: {app: sleep-2}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: sleep, image: busybox, command: [sleep, '100000']}]
";

async fn ping_and_replace(k: &Kubectl) -> Result<()> {
    // Seed 004's sleep/sleep1.yaml and sleep2.yaml run kiamol's sleep image; busybox's sleep stands in.
    k.apply_yaml(SLEEPERS)?.ok()?;
    ok(k, &["rollout", "status", "deployment/sleep-1", "--timeout=60s"])?;
    ok(k, &["wait", "--for=condition=Ready", "pod", "-l", "app=sleep-2", "--timeout=60s"])?;
    let ip_of_2 = || ok(k, &["get", "pod", "-l", "app=sleep-2", "--output", "jsonpath={.items[0].status.podIP}"]);
    let old = ip_of_2()?;
    let out = ok(k, &["exec", "deploy/sleep-1", "--", "ping", "-c", "2", &old])?;
    ensure!(out.contains("2 packets transmitted, 2 packets received"), "{out}");

    ok(k, &["delete", "pods", "-l", "app=sleep-2"])?;
    ok(k, &["wait", "--for=condition=Ready", "pod", "-l", "app=sleep-2", "--timeout=60s"])?;
    let new = ip_of_2()?;
    ensure!(!new.is_empty() && new != old, "the replacement has IP {new:?} (old {old})");
    let out = ok(k, &["exec", "deploy/sleep-1", "--", "ping", "-c", "2", &new])?;
    ensure!(out.contains("2 packets transmitted, 2 packets received"), "{out}");
    // The old address answers no more.
    let out = k.run(&["exec", "deploy/sleep-1", "--", "ping", "-c", "1", "-W", "2", &old])?;
    ensure!(!out.success() && out.stdout.contains("0 packets received"), "ping {old}: {}{}", out.stdout, out.stderr);
    Ok(())
}
