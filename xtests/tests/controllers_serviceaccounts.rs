//! Service accounts end to end: the serviceaccount and root-ca-cert-publisher controllers make and repair
//! each namespace's `default` ServiceAccount and `kube-root-ca.crt`; the ServiceAccount admission plugin
//! mounts the projected token volume; TokenRequest tokens authenticate a kube-rs client until the pod they are
//! bound to is gone; expired, forged and orphaned tokens are refused with 401.

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use knet_apiserver::serviceaccount::{keys, token};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use xtests::{wait, ApiServer, Controllers};

const WAIT: Duration = Duration::from_secs(20);

async fn sa_uid(client: &kube::Client, ns: &str) -> Result<Option<String>> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    Ok(api.get_opt("default").await?.and_then(|sa| sa.metadata.uid))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_accounts_and_root_ca_are_made_and_repaired() -> Result<()> {
    let api = ApiServer::start().await?;
    let _controllers = Controllers::start(&api).await?;
    let client = api.client().await?;
    let k = api.kubectl();
    let ca = api.ca_pem()?;
    k.run(&["create", "namespace", "team-a"])?.ok()?;

    for ns in ["default", "kube-system", "team-a"] {
        wait::until(WAIT, &format!("the default ServiceAccount in {ns}"), || async {
            sa_uid(&client, ns).await.map(|u| u.map(|_| ()))
        })
        .await?;
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "team-a");
    let published = |maps: Api<ConfigMap>, ca: String| async move {
        let cm = maps.get_opt("kube-root-ca.crt").await?;
        Ok(cm.filter(|cm| cm.data.as_ref().and_then(|d| d.get("ca.crt")) == Some(&ca)).map(|_| ()))
    };
    wait::until(WAIT, "kube-root-ca.crt in team-a", || published(maps.clone(), ca.clone())).await?;

    // A deleted account is made again (a new object).
    let first = sa_uid(&client, "team-a").await?.context("uid")?;
    k.run(&["delete", "serviceaccount", "default", "-n", "team-a"])?.ok()?;
    wait::until(WAIT, "a new default ServiceAccount in team-a", || async {
        Ok(sa_uid(&client, "team-a").await?.filter(|u| *u != first).map(|_| ()))
    })
    .await?;

    // A changed CA is put back, a deleted ConfigMap made again.
    k.run(&[
        "patch",
        "configmap",
        "kube-root-ca.crt",
        "-n",
        "team-a",
        "--type=merge",
        "-p",
        r#"{"data":{"ca.crt":"tampered"}}"#,
    ])?
    .ok()?;
    wait::until(WAIT, "the repaired kube-root-ca.crt", || published(maps.clone(), ca.clone())).await?;
    k.run(&["delete", "configmap", "kube-root-ca.crt", "-n", "team-a"])?.ok()?;
    wait::until(WAIT, "the re-created kube-root-ca.crt", || published(maps.clone(), ca.clone())).await?;
    Ok(())
}

/// A kube-rs client that authenticates with `token` and trusts the cluster CA.
async fn client_with_token(api: &ApiServer, token: &str) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(api.kubeconfig_path())?;
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?;
    config.auth_info = kube::config::AuthInfo { token: Some(token.to_string().into()), ..Default::default() };
    Ok(kube::Client::try_from(config)?)
}

async fn status_with(api: &ApiServer, token: &str) -> Result<u16> {
    let resp =
        api.http()?.get(format!("{}/api/v1/namespaces/default/pods", api.url())).bearer_auth(token).send().await?;
    Ok(resp.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admission_token_requests_and_token_authentication() -> Result<()> {
    let api = ApiServer::start().await?;
    let _controllers = Controllers::start(&api).await?;
    let admin = api.client().await?;
    let k = api.kubectl();
    wait::until(WAIT, "the default ServiceAccount", || async {
        sa_uid(&admin, "default").await.map(|u| u.map(|_| ()))
    })
    .await?;

    // Admission: the default account and the projected volume, seen as kubectl shows the pod.
    k.run(&["run", "web", "--image=busybox", "--restart=Never", "--", "sleep", "3600"])?.ok()?;
    let yaml = k.run(&["get", "pod", "web", "-o", "yaml"])?.ok()?.stdout;
    let pod: serde_json::Value = serde_yaml::from_str(&yaml)?;
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let volume = &pod["spec"]["volumes"][0];
    let volume_name = volume["name"].as_str().context("volume name")?;
    assert!(volume_name.starts_with("kube-api-access-") && volume_name.len() == 21, "{volume_name}");
    assert_eq!(
        volume["projected"]["sources"],
        json!([
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}
        ])
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": volume_name, "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    );
    let no_token = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"quiet"},
        "spec":{"automountServiceAccountToken":false,"containers":[{"name":"c","image":"busybox"}]}}"#;
    k.run_with_stdin(&["create", "-f", "-"], no_token)?.ok()?;
    let quiet: Pod = Api::namespaced(admin.clone(), "default").get("quiet").await?;
    assert!(quiet.spec.and_then(|s| s.volumes).unwrap_or_default().is_empty());
    let out =
        k.run(&["run", "orphan", "--image=busybox", "--overrides", r#"{"spec":{"serviceAccountName":"nope"}}"#])?;
    assert!(
        out.stderr.contains("pods \"orphan\" is forbidden: error looking up service account default/nope: serviceaccount \"nope\" not found"),
        "{}",
        out.stderr
    );

    // TokenRequest: a plain token and one bound to the pod both work with kube-rs.
    let plain = k.run(&["create", "token", "default"])?.ok()?.stdout.trim().to_string();
    let bound =
        k.run(&["create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=web"])?.ok()?.stdout;
    let bound = bound.trim().to_string();
    for t in [&plain, &bound] {
        let pods: Api<Pod> = Api::namespaced(client_with_token(&api, t).await?, "default");
        let names: Vec<String> =
            pods.list(&Default::default()).await?.items.into_iter().filter_map(|p| p.metadata.name).collect();
        assert!(names.contains(&"web".to_string()), "{names:?}");
    }
    let out = k.run(&["create", "token", "default", "--duration=5m"])?;
    assert!(out.stderr.contains("may not specify a duration less than 10 minutes"), "{}", out.stderr);
    let out = k.run(&["create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=quiet"])?;
    assert!(out.success(), "same account: {}", out.stderr);

    // Deleting the pod revokes the bound token; the plain one still works.
    Api::<Pod>::namespaced(admin.clone(), "default").delete("web", &DeleteParams::default().grace_period(0)).await?;
    wait::until(WAIT, "the bound token to be refused", || async {
        Ok((status_with(&api, &bound).await? == 401).then_some(()))
    })
    .await?;
    assert_eq!(status_with(&api, &plain).await?, 200);

    // Forged: the payload of one token with the signature of another; and a garbage JWT.
    let mut parts: Vec<&str> = plain.split('.').collect();
    let other: Vec<&str> = bound.split('.').collect();
    parts[2] = other[2];
    assert_eq!(status_with(&api, &parts.join(".")).await?, 401);
    assert_eq!(status_with(&api, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA").await?, 401);

    // Expired: signed with the cluster's own key, but an hour and more in the past.
    let (key_pem, pub_pem) = keys::load_or_create(api.data_dir())?;
    let signing = keys::from_pem(&key_pem, &[pub_pem])?;
    let sa_uid = sa_uid(&admin, "default").await?.context("uid")?;
    let now = jiff::Timestamp::now().as_second();
    let claims = |exp: i64| token::Claims {
        aud: vec![knet_apiserver::serviceaccount::DEFAULT_ISSUER.into()],
        exp,
        iat: exp - 3600,
        iss: knet_apiserver::serviceaccount::DEFAULT_ISSUER.into(),
        jti: "test".into(),
        kubernetes: token::KubernetesClaims {
            namespace: "default".into(),
            node: None,
            pod: None,
            secret: None,
            serviceaccount: token::ObjectRef { name: "default".into(), uid: sa_uid.clone() },
            warnafter: None,
        },
        nbf: exp - 3600,
        sub: token::subject("default", "default"),
    };
    let fresh = token::sign(&signing, &claims(now + 600))?;
    assert_eq!(status_with(&api, &fresh).await?, 200, "a token signed with the cluster key works");
    let expired = token::sign(&signing, &claims(now - 300))?;
    assert_eq!(status_with(&api, &expired).await?, 401);

    // A token of a deleted account stops working (the controller makes a new account, with a new uid).
    Api::<ServiceAccount>::namespaced(admin.clone(), "default").delete("default", &DeleteParams::default()).await?;
    wait::until(WAIT, "the plain token to be refused", || async {
        Ok((status_with(&api, &plain).await? == 401).then_some(()))
    })
    .await?;
    let _ = PostParams::default();
    Ok(())
}
