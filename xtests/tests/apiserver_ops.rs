//! Operating the API server: `knet-apiserver kubeconfig` writes a working kubeconfig
//! for a new user, and `/metrics` exposes Prometheus metrics to authenticated clients.

use anyhow::{Context, Result};
use xtests::ApiServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_command_writes_a_working_kubeconfig_for_a_user() -> Result<()> {
    let server = ApiServer::start().await?;
    let bin = xtests::apiserver::knet_binary("knet-apiserver")?;
    let out_path = server.data_dir().join("alice.kubeconfig");
    let out = std::process::Command::new(bin)
        .args(["kubeconfig", "--data-dir"])
        .arg(server.data_dir())
        .args(["--user", "alice", "--group", "developers", "--server", &server.url(), "--out"])
        .arg(&out_path)
        .output()
        .context("running knet-apiserver kubeconfig")?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&out_path)?;
    assert!(text.contains("certificate-authority-data") && text.contains("alice"), "{text}");
    let tokens = std::fs::read_to_string(server.data_dir().join("tokens.csv"))?;
    assert!(tokens.lines().any(|l| l.contains(",alice,") && l.contains("developers")), "{tokens}");

    // The running server accepts the new user's token (the token file is re-read).
    let kubectl = xtests::Kubectl::new(&out_path, &server.data_dir().join("alice-cache"));
    let ns = kubectl.run(&["get", "namespaces", "-o", "name"])?;
    assert!(ns.success(), "{}", ns.stderr);
    assert!(ns.stdout.contains("namespace/kube-system"), "{}", ns.stdout);

    // Asking again reuses the token.
    let again = std::process::Command::new(xtests::apiserver::knet_binary("knet-apiserver")?)
        .args(["kubeconfig", "--data-dir"])
        .arg(server.data_dir())
        .args(["--user", "alice", "--server", &server.url(), "--out"])
        .arg(server.data_dir().join("alice2.kubeconfig"))
        .output()?;
    assert!(again.status.success());
    let tokens2 = std::fs::read_to_string(server.data_dir().join("tokens.csv"))?;
    assert_eq!(tokens2.lines().filter(|l| l.contains(",alice,")).count(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_need_authentication() -> Result<()> {
    let server = ApiServer::start().await?;
    let kubectl = server.kubectl();
    assert!(kubectl.run(&["get", "services", "-A"])?.success());
    let http = server.http()?;
    let anon = http.get(format!("{}/metrics", server.url())).send().await?;
    assert_eq!(anon.status(), 401);
    let body = server.metrics().await?;
    assert!(
        body.lines().any(|l| l.starts_with("apiserver_request_total{")
            && l.contains("verb=\"list\"")
            && l.contains("resource=\"services\"")),
        "{body}"
    );
    assert!(body.contains("apiserver_request_duration_seconds_bucket"), "{body}");
    let rev = body.lines().find(|l| l.starts_with("apiserver_storage_revision ")).context("no revision metric")?;
    let rev: i64 = rev.split_whitespace().nth(1).context("no value")?.parse()?;
    assert!(rev > 0);
    Ok(())
}
