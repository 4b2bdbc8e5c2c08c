//! Smoke test of a freshly started `knet-apiserver` and of the harness itself: anonymous health and version,
//! 401 without a token, the admin token from the written kubeconfig, the real kubectl, restart and cleanup.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use xtests::ApiServer;

#[tokio::test]
async fn anonymous_health_and_version_401_elsewhere_and_kubectl_version() -> Result<()> {
    let api = ApiServer::start().await?;
    let http = api.http()?;

    let readyz = http.get(format!("{}/readyz", api.url())).send().await?;
    assert_eq!(readyz.status(), 200);
    assert_eq!(readyz.text().await?.trim(), "ok");

    let version: Value = http.get(format!("{}/version", api.url())).send().await?.error_for_status()?.json().await?;
    let git_version = version["gitVersion"].as_str().context("/version has no gitVersion")?;
    assert!(git_version.starts_with("v1."), "{version}");

    let denied = http.get(format!("{}/api/v1/namespaces", api.url())).send().await?;
    assert_eq!(denied.status(), 401);
    let status: Value = denied.json().await?;
    assert_eq!(
        status,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"Unauthorized","reason":"Unauthorized","code":401})
    );
    let bad_token = http.get(format!("{}/api/v1/namespaces", api.url())).bearer_auth("not-a-token").send().await?;
    assert_eq!(bad_token.status(), 401);

    let allowed = http.get(format!("{}/api/v1/namespaces", api.url())).bearer_auth(api.admin_token()?).send().await?;
    assert_eq!(allowed.status(), 200);
    let list: Value = allowed.json().await?;
    assert_eq!(list["kind"], "NamespaceList");

    let out = api.kubectl().run(&["version"])?.ok()?;
    assert!(out.stdout.contains("Client Version: v1.34."), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("Server Version: {git_version}")), "{}", out.stdout);
    Ok(())
}

#[tokio::test]
async fn kill9_and_restart_keep_the_data_dir_port_and_credentials() -> Result<()> {
    let mut api = ApiServer::start().await?;
    let port = api.port();
    let token = api.admin_token()?;
    let ca = api.ca_pem()?;

    api.kill9();
    ensure!(api.pid().is_none());
    ensure!(api.http()?.get(format!("{}/readyz", api.url())).send().await.is_err(), "still serving after kill -9");

    api.restart().await?;
    assert_eq!(api.port(), port);
    assert_eq!(api.admin_token()?, token);
    assert_eq!(api.ca_pem()?, ca);
    let client = api.client().await?;
    let version = client.apiserver_version().await?;
    assert_eq!(version.major, "1");

    // A graceful restart works too.
    api.restart().await?;
    assert_eq!(api.kubectl().run(&["get", "--raw", "/readyz"])?.ok()?.stdout.trim(), "ok");
    Ok(())
}

#[tokio::test]
async fn dropping_the_server_kills_it_and_removes_its_data() -> Result<()> {
    let api = ApiServer::start().await?;
    let pid = api.pid().context("no pid")?;
    let dir = api.data_dir().to_path_buf();
    drop(api);
    tokio::time::sleep(Duration::from_millis(100)).await;
    ensure!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "knet-apiserver {pid} still exists");
    ensure!(!dir.exists(), "{} still exists", dir.display());
    Ok(())
}
