//! Volumes in real pods (root): the seed's HTTPS nginx (a Secret mounted at /etc/nginx/ssl, served on 443),
//! configMap items with modes, downwardAPI, Secret updates reaching a running pod, and a service-account token
//! that cannot be had keeping the pod in ContainerCreating with a FailedMount event (never a fake token).

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use xtests::node_host::{root_or_skip, NodeHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_config_map_downward_and_token_volumes() -> Result<()> {
    if !root_or_skip() {
        return Ok(());
    }
    let host = NodeHost::start().await?;
    let k = host.kubectl();
    // The seed's certificate Secret and HTTPS nginx (nginx-secure-app).
    let certs = tempfile::tempdir()?;
    let (key, crt) = (certs.path().join("nginx.key"), certs.path().join("nginx.crt"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-nodes", "-days", "365", "-newkey", "rsa:2048", "-subj", "/CN=my-nginx/O=my-nginx"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()?;
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    k.run(&[
        "create",
        "secret",
        "generic",
        "nginxsecret",
        &format!("--from-file={}", key.display()),
        &format!("--from-file={}", crt.display()),
    ])?
    .ok()?;
    k.run(&["create", "configmap", "settings", "--from-literal=mode=fast", "--from-literal=level=3"])?.ok()?;
    host.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: nginxhttps, labels: {run: my-nginx}}
spec:
  volumes:
  - {name: secret-volume, secret: {secretName: nginxsecret}}
  containers:
  - name: nginxhttps
    image: bprashanth/nginxhttps:1.0
    ports: [{containerPort: 443}, {containerPort: 80}]
    volumeMounts: [{mountPath: /etc/nginx/ssl, name: secret-volume}]
---
apiVersion: v1
kind: Pod
metadata: {name: files, labels: {app: files, tier: back}}
spec:
  volumes:
  - name: cfg
    configMap: {name: settings, items: [{key: mode, path: conf/mode, mode: 0400}], defaultMode: 0640}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: name, fieldRef: {fieldPath: metadata.name}}]}
  - name: sec
    secret: {secretName: nginxsecret, items: [{key: nginx.crt, path: cert.pem}]}
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: cfg, mountPath: /etc/settings}
    - {name: info, mountPath: /etc/podinfo}
    - {name: sec, mountPath: /etc/sec, readOnly: true}
---
apiVersion: v1
kind: Pod
metadata: {name: token}
spec:
  volumes:
  - name: kube-api-access-test
    projected:
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3607}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}], optional: true}
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts: [{name: kube-api-access-test, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}]
"#,
    )?;
    let p = host.wait_running("default", "nginxhttps").await?;
    let ip = p.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    let out = host.node_command("curl", &["-sk", "--max-time", "5", &format!("https://{ip}/")])?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("<h1>Welcome to nginx!</h1>"), "HTTPS: {:?}", out);
    let out = host.node_command("curl", &["-s", "--max-time", "5", &format!("http://{ip}/")])?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("Welcome to nginx!"), "HTTP: {:?}", out);
    // The certificate the pod serves is the Secret's.
    let out = host.node_command(
        "sh",
        &["-c", &format!("echo | openssl s_client -connect {ip}:443 2>/dev/null | openssl x509 -noout -subject")],
    )?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("my-nginx"), "{}", String::from_utf8_lossy(&out.stdout));
    // Nothing of the pod's mount reached the node.
    assert!(!std::path::Path::new("/etc/nginx/ssl").exists());

    host.wait_running("default", "files").await?;
    let sh = |cmd: &'static str| {
        let host = &host;
        async move { host.exec_stdout("default", "files", &["sh", "-c", cmd]).await }
    };
    assert_eq!(sh("cat /etc/settings/conf/mode").await?, "fast");
    assert!(sh("ls /etc/settings").await?.trim() == "conf", "only the listed item");
    assert_eq!(sh("stat -L -c %a /etc/settings/conf/mode").await?.trim(), "400");
    assert_eq!(sh("cat /etc/podinfo/labels").await?, "app=\"files\"\ntier=\"back\"");
    assert_eq!(sh("cat /etc/podinfo/name").await?, "files");
    assert!(sh("readlink /etc/podinfo/name").await?.trim() == "..data/name", "kubelet's atomic writer layout");
    assert!(sh("cat /etc/sec/cert.pem").await?.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(host.exec("default", "files", &["touch", "/etc/sec/x"]).await?.status.code() != Some(0), "read-only mount");
    // A ConfigMap change reaches the running pod (within the volume resync).
    k.run(&["patch", "configmap", "settings", "-p", r#"{"data":{"mode":"slow"}}"#])?.ok()?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while sh("cat /etc/settings/conf/mode").await? != "slow" {
        assert!(Instant::now() < deadline, "the ConfigMap update never reached the pod");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A token that cannot be had: the pod waits, with kubelet's FailedMount event.
    let token_ok = host.pod("default", "token").await?.status.and_then(|s| s.phase);
    let events: Api<Event> = Api::namespaced(host.client().await?, "default");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = events.list(&Default::default()).await?;
        let failed = list
            .items
            .iter()
            .find(|e| e.involved_object.name.as_deref() == Some("token") && e.reason.as_deref() == Some("FailedMount"));
        if let Some(e) = failed {
            let msg = e.message.clone().unwrap_or_default();
            assert!(
                msg.starts_with("MountVolume.SetUp failed for volume \"kube-api-access-test\" : failed to fetch token"),
                "{msg}"
            );
            break;
        }
        let p = host.pod("default", "token").await?;
        if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
            // The API server serves TokenRequest: then the token is real and mounted.
            let t = host
                .exec_stdout("default", "token", &["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"])
                .await?;
            assert_eq!(t.split('.').count(), 3, "a JWT: {t}");
            return Ok(());
        }
        assert!(Instant::now() < deadline, "no FailedMount event and no token (phase {token_ok:?})");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let p = host.pod("default", "token").await?;
    let waiting = p
        .status
        .and_then(|s| s.container_statuses)
        .and_then(|cs| cs.into_iter().next())
        .and_then(|c| c.state)
        .and_then(|s| s.waiting)
        .and_then(|w| w.reason);
    assert_eq!(waiting.as_deref(), Some("ContainerCreating"));
    Ok(())
}
