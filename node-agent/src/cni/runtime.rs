//! The agent as a CNI runtime with libcni's semantics over a network configuration list: ADD runs the plugins
//! in order, each getting the previous result as `prevResult`, and caches the final result; CHECK and DEL hand
//! the cached result to every plugin (DEL in reverse order) and DEL drops the cache entry; GC first DELs every
//! cached attachment that is not valid any more, then (spec ≥ 1.1.0) asks each plugin to GC; STATUS (spec ≥
//! 1.1.0) asks each plugin whether it is ready.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::conf::NetworkConfList;
use super::exec::{self, ExecError, Invocation};

/// Why a CNI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("writing the CNI result cache {path}: {source}")]
    CacheWrite { path: String, source: std::io::Error },
    #[error("reading the CNI result cache {path}: {source}")]
    CacheRead { path: String, source: std::io::Error },
    #[error("{0}")]
    Many(String),
}

/// What identifies one attachment of a sandbox to the network (libcni's `RuntimeConf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS` as key/value pairs.
    pub args: Vec<(String, String)>,
}

/// The `CNI_ARGS` of a pod sandbox, as kubelet's CRI runtimes pass them.
pub fn pod_args(namespace: &str, name: &str, sandbox_id: &str, uid: &str) -> Vec<(String, String)> {
    vec![
        ("IgnoreUnknown".into(), "1".into()),
        ("K8S_POD_NAMESPACE".into(), namespace.into()),
        ("K8S_POD_NAME".into(), name.into()),
        ("K8S_POD_INFRA_CONTAINER_ID".into(), sandbox_id.into()),
        ("K8S_POD_UID".into(), uid.into()),
    ]
}

/// `K=V;K=V`.
pub fn render_args(args: &[(String, String)]) -> String {
    args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
}

/// `a.b.c` ≥ `x.y.z`, comparing numerically; unparsable parts count as 0.
pub fn version_at_least(version: &str, min: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(version) >= parse(min)
}

/// The JSON a plugin of `list` gets on stdin: its own object plus the list's `name` and `cniVersion`, the
/// previous result when given, and extra keys (GC's `cni.dev/valid-attachments`).
pub fn plugin_stdin(list: &NetworkConfList, index: usize, prev: Option<&Value>, extra: &Map<String, Value>) -> Vec<u8> {
    let mut obj = list.plugins[index].raw.clone();
    obj.insert("name".into(), Value::String(list.name.clone()));
    obj.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    match prev {
        Some(p) if !p.is_null() => {
            obj.insert("prevResult".into(), p.clone());
        }
        _ => {
            obj.remove("prevResult");
        }
    }
    for (k, v) in extra {
        obj.insert(k.clone(), v.clone());
    }
    serde_json::to_vec(&Value::Object(obj)).unwrap_or_default()
}

/// A cached ADD result, in libcni's cache layout (`<cache>/results/<network>-<container>-<ifname>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedAttachment {
    pub kind: String,
    #[serde(rename = "containerId")]
    pub container_id: String,
    #[serde(rename = "ifName")]
    pub ifname: String,
    #[serde(rename = "networkName")]
    pub network_name: String,
    #[serde(rename = "netns", default)]
    pub netns: String,
    #[serde(rename = "cniArgs", default)]
    pub cni_args: Vec<(String, String)>,
    /// The configuration list the attachment was made with (base64), so DEL works after the config changed.
    #[serde(default)]
    pub config: String,
    #[serde(default)]
    pub result: Value,
}

/// The CNI runtime: plugin directories and the result cache.
#[derive(Debug, Clone)]
pub struct CniRuntime {
    bin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
}

impl CniRuntime {
    pub fn new(bin_dirs: Vec<PathBuf>, cache_dir: PathBuf) -> Self {
        CniRuntime { bin_dirs, cache_dir }
    }

    fn cache_path(&self, network: &str, container_id: &str, ifname: &str) -> PathBuf {
        self.cache_dir.join("results").join(format!("{network}-{container_id}-{ifname}"))
    }

    fn invocation(command: &'static str, att: &Attachment) -> Invocation {
        Invocation {
            command,
            container_id: att.container_id.clone(),
            netns: att.netns.clone(),
            ifname: att.ifname.clone(),
            args: render_args(&att.args),
        }
    }

    /// ADD: every plugin in order; the final result is cached and returned.
    pub async fn add(&self, list: &NetworkConfList, att: &Attachment) -> Result<Value, CniError> {
        let inv = Self::invocation("ADD", att);
        let mut prev: Option<Value> = None;
        for (i, plugin) in list.plugins.iter().enumerate() {
            let stdin = plugin_stdin(list, i, prev.as_ref(), &Map::new());
            let result = exec::run(&self.bin_dirs, &plugin.plugin_type, &inv, &stdin).await?;
            prev = Some(result);
        }
        let result = prev.unwrap_or(Value::Null);
        self.write_cache(list, att, &result)?;
        Ok(result)
    }

    /// CHECK (spec ≥ 0.4.0 and not `disableCheck`): every plugin with the cached result.
    pub async fn check(&self, list: &NetworkConfList, att: &Attachment) -> Result<(), CniError> {
        if !version_at_least(&list.cni_version, "0.4.0") || list.disable_check {
            return Ok(());
        }
        let cached = self.read_cache(&list.name, &att.container_id, &att.ifname)?;
        let prev = cached.map(|c| c.result);
        let inv = Self::invocation("CHECK", att);
        for (i, plugin) in list.plugins.iter().enumerate() {
            let stdin = plugin_stdin(list, i, prev.as_ref(), &Map::new());
            exec::run(&self.bin_dirs, &plugin.plugin_type, &inv, &stdin).await?;
        }
        Ok(())
    }

    /// DEL: every plugin in reverse order with the cached result (when the list's version passes one), then the
    /// cache entry is removed. Plugins treat a DEL of something already gone as success.
    pub async fn del(&self, list: &NetworkConfList, att: &Attachment) -> Result<(), CniError> {
        let cached = self.read_cache(&list.name, &att.container_id, &att.ifname)?;
        let prev = if version_at_least(&list.cni_version, "0.4.0") { cached.map(|c| c.result) } else { None };
        let inv = Self::invocation("DEL", att);
        for (i, plugin) in list.plugins.iter().enumerate().rev() {
            let stdin = plugin_stdin(list, i, prev.as_ref(), &Map::new());
            exec::run(&self.bin_dirs, &plugin.plugin_type, &inv, &stdin).await?;
        }
        let path = self.cache_path(&list.name, &att.container_id, &att.ifname);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CniError::CacheWrite { path: path.display().to_string(), source }),
        }
    }

    /// GC: DELs every cached attachment of `list`'s network not in `valid` (with the config it was made with),
    /// then, for spec ≥ 1.1.0 lists without `disableGC`, runs every plugin's GC with the valid attachments.
    /// Returns the attachments that were deleted.
    pub async fn gc(&self, list: &NetworkConfList, valid: &[(String, String)]) -> Result<Vec<Attachment>, CniError> {
        let mut errors = Vec::new();
        let mut deleted = Vec::new();
        for cached in self.cached_attachments()? {
            if cached.network_name != list.name
                || valid.iter().any(|(c, i)| *c == cached.container_id && *i == cached.ifname)
            {
                continue;
            }
            let att = Attachment {
                container_id: cached.container_id.clone(),
                netns: cached.netns.clone(),
                ifname: cached.ifname.clone(),
                args: cached.cni_args.clone(),
            };
            let made_with = self.list_of(&cached).unwrap_or_else(|| list.clone());
            match self.del(&made_with, &att).await {
                Ok(()) => deleted.push(att),
                Err(e) => errors.push(e.to_string()),
            }
        }
        if version_at_least(&list.cni_version, "1.1.0") && !list.disable_gc {
            let attachments: Vec<Value> = valid.iter().map(|(c, i)| json!({"containerID": c, "ifname": i})).collect();
            let mut extra = Map::new();
            extra.insert("cni.dev/valid-attachments".into(), Value::Array(attachments));
            let inv = Invocation { command: "GC", ..Default::default() };
            for (i, plugin) in list.plugins.iter().enumerate() {
                let stdin = plugin_stdin(list, i, None, &extra);
                if let Err(e) = exec::run(&self.bin_dirs, &plugin.plugin_type, &inv, &stdin).await {
                    errors.push(e.to_string());
                }
            }
        }
        if errors.is_empty() {
            Ok(deleted)
        } else {
            Err(CniError::Many(errors.join("; ")))
        }
    }

    /// STATUS (spec ≥ 1.1.0): whether every plugin is ready to ADD. Older lists are ready once they load.
    pub async fn status(&self, list: &NetworkConfList) -> Result<(), CniError> {
        if !version_at_least(&list.cni_version, "1.1.0") {
            return Ok(());
        }
        let inv = Invocation { command: "STATUS", ..Default::default() };
        for (i, plugin) in list.plugins.iter().enumerate() {
            let stdin = plugin_stdin(list, i, None, &Map::new());
            exec::run(&self.bin_dirs, &plugin.plugin_type, &inv, &stdin).await?;
        }
        Ok(())
    }

    /// Every cached attachment (of every network).
    pub fn cached_attachments(&self) -> Result<Vec<CachedAttachment>, CniError> {
        let dir = self.cache_dir.join("results");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CniError::CacheRead { path: dir.display().to_string(), source }),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Ok(bytes) = std::fs::read(entry.path()) else { continue };
            if let Ok(c) = serde_json::from_slice::<CachedAttachment>(&bytes) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// The cached attachment of `container_id`/`ifname` on `network`, if any.
    pub fn read_cache(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<CachedAttachment>, CniError> {
        let path = self.cache_path(network, container_id, ifname);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CniError::CacheRead { path: path.display().to_string(), source }),
        }
    }

    fn list_of(&self, cached: &CachedAttachment) -> Option<NetworkConfList> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(&cached.config).ok()?;
        super::conf::parse(Path::new("cached.conflist"), &bytes).ok()
    }

    fn write_cache(&self, list: &NetworkConfList, att: &Attachment, result: &Value) -> Result<(), CniError> {
        let path = self.cache_path(&list.name, &att.container_id, &att.ifname);
        let err = |source| CniError::CacheWrite { path: path.display().to_string(), source };
        // The cached list is always a list, whatever file it came from.
        let as_list = json!({
            "cniVersion": list.cni_version,
            "name": list.name,
            "disableCheck": list.disable_check,
            "disableGC": list.disable_gc,
            "plugins": list.plugins.iter().map(|p| Value::Object(p.raw.clone())).collect::<Vec<_>>(),
        });
        let cached = CachedAttachment {
            kind: "cniCacheV1".into(),
            container_id: att.container_id.clone(),
            ifname: att.ifname.clone(),
            network_name: list.name.clone(),
            netns: att.netns.clone(),
            cni_args: att.args.clone(),
            config: base64::engine::general_purpose::STANDARD.encode(as_list.to_string()),
            result: result.clone(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&cached).unwrap_or_default()).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn renders_kubelet_cni_args() {
        let args = pod_args("default", "web", "abc", "u-1");
        assert_eq!(
            render_args(&args),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1"
        );
    }

    #[test]
    fn compares_versions() {
        assert!(version_at_least("1.1.0", "1.1.0"));
        assert!(version_at_least("1.0.0", "0.4.0"));
        assert!(!version_at_least("0.3.1", "0.4.0"));
        assert!(!version_at_least("1.0.0", "1.1.0"));
        assert!(version_at_least("1.10.0", "1.9.0"));
    }

    fn list(version: &str, plugins: &[&str]) -> NetworkConfList {
        let plugins: Vec<Value> = plugins.iter().map(|t| json!({"type": t, "x": 1})).collect();
        let bytes = serde_json::to_vec(&json!({"cniVersion": version, "name": "net", "plugins": plugins})).unwrap();
        super::super::conf::parse(Path::new("a.conflist"), &bytes).unwrap()
    }

    #[test]
    fn plugin_stdin_injects_name_version_and_prev_result() {
        let l = list("1.0.0", &["a", "b"]);
        let prev = json!({"ips": []});
        let v: Value = serde_json::from_slice(&plugin_stdin(&l, 1, Some(&prev), &Map::new())).unwrap();
        assert_eq!(v, json!({"type": "b", "x": 1, "name": "net", "cniVersion": "1.0.0", "prevResult": {"ips": []}}));
    }

    /// A plugin that logs each call (command, container, prevResult presence) to a file and answers ADD with a
    /// result naming itself.
    fn logging_plugin(dir: &Path, name: &str, log: &Path) {
        let p = dir.join(name);
        let body = format!(
            "#!/bin/sh\nin=$(cat)\nprev=no; case \"$in\" in *prevResult*) prev=yes;; esac\n\
             echo \"{name} $CNI_COMMAND ${{CNI_CONTAINERID:-}} prev=$prev\" >> {log}\n\
             [ \"$CNI_COMMAND\" = ADD ] && printf '{{\"cniVersion\":\"1.1.0\",\"ips\":[{{\"address\":\"10.0.0.%s/24\"}}]}}' {n}\nexit 0\n",
            log = log.display(),
            n = name.len()
        );
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn add_chains_and_caches_del_reverses_gc_cleans_stale_attachments() {
        let bins = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let log = bins.path().join("log");
        logging_plugin(bins.path(), "first", &log);
        logging_plugin(bins.path(), "second", &log);
        let rt = CniRuntime::new(vec![bins.path().to_path_buf()], cache.path().to_path_buf());
        let l = list("1.1.0", &["first", "second"]);
        let att = |id: &str| Attachment {
            container_id: id.into(),
            netns: "/proc/1/ns/net".into(),
            ifname: "eth0".into(),
            args: vec![],
        };
        let result = rt.add(&l, &att("c1")).await.unwrap();
        assert_eq!(result["ips"][0]["address"], "10.0.0.6/24");
        rt.add(&l, &att("c2")).await.unwrap();
        assert!(rt.read_cache("net", "c1", "eth0").unwrap().is_some());
        rt.check(&l, &att("c1")).await.unwrap();
        rt.del(&l, &att("c1")).await.unwrap();
        assert!(rt.read_cache("net", "c1", "eth0").unwrap().is_none());
        // c2 is not valid any more: GC DELs it from the cache, then asks each plugin to GC.
        let deleted = rt.gc(&l, &[]).await.unwrap();
        assert_eq!(deleted.len(), 1);
        assert_eq!(deleted[0].container_id, "c2");
        rt.status(&l).await.unwrap();
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            calls.lines().collect::<Vec<_>>(),
            [
                "first ADD c1 prev=no",
                "second ADD c1 prev=yes",
                "first ADD c2 prev=no",
                "second ADD c2 prev=yes",
                "first CHECK c1 prev=yes",
                "second CHECK c1 prev=yes",
                "second DEL c1 prev=yes",
                "first DEL c1 prev=yes",
                "second DEL c2 prev=yes",
                "first DEL c2 prev=yes",
                "first GC  prev=no",
                "second GC  prev=no",
                "first STATUS  prev=no",
                "second STATUS  prev=no",
            ]
        );
    }
}
