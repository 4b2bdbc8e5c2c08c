//! Network configuration files as libcni reads them: the lexically first `*.conflist`, `*.conf` or `*.json` in
//! the config dir; a single-plugin `.conf` becomes a list of one. Parsing is pure; only [`load_dir`] reads files.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// File extensions libcni accepts in a config dir.
pub const EXTENSIONS: [&str; 3] = ["conflist", "conf", "json"];

/// Why a network configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("reading CNI config dir {dir}: {source}")]
    ReadDir { dir: String, source: std::io::Error },
    #[error("reading CNI config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("parsing CNI config {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("no network config found in {0}")]
    NoConfig(String),
}

/// One plugin of a list, as the raw JSON object from the file (every field is passed on to the plugin).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConf {
    /// `type`: the binary to run.
    pub plugin_type: String,
    pub raw: Map<String, Value>,
}

/// A network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfList {
    pub name: String,
    pub cni_version: String,
    pub disable_check: bool,
    pub disable_gc: bool,
    pub plugins: Vec<PluginConf>,
    /// The file it came from.
    pub source: PathBuf,
    /// The file's bytes, to notice changes.
    pub bytes: Vec<u8>,
}

/// The config files of `dir` libcni would consider, in the order it considers them.
pub fn config_files(names: &[String]) -> Vec<String> {
    let mut files: Vec<String> = names
        .iter()
        .filter(|n| !n.starts_with('.'))
        .filter(|n| Path::new(n.as_str()).extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.contains(&e)))
        .cloned()
        .collect();
    files.sort();
    files
}

/// Parses one config file's bytes; `path` decides between a list (`.conflist`) and a single plugin.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<NetworkConfList, ConfError> {
    let shown = path.display().to_string();
    let invalid = |reason: String| ConfError::Invalid { path: shown.clone(), reason };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let Value::Object(obj) = value else { return Err(invalid("not a JSON object".into())) };
    let is_list = path.extension().and_then(|e| e.to_str()) == Some("conflist");
    let str_field = |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
    let bool_field = |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    let name = str_field(&obj, "name").filter(|n| !n.is_empty()).ok_or_else(|| invalid("no network name".into()))?;
    let cni_version = str_field(&obj, "cniVersion").unwrap_or_else(|| "0.1.0".to_string());
    let plugin_objs: Vec<Map<String, Value>> = if is_list {
        let Some(Value::Array(list)) = obj.get("plugins") else {
            return Err(invalid("no plugins in the list".into()));
        };
        let mut out = Vec::new();
        for p in list {
            match p {
                Value::Object(o) => out.push(o.clone()),
                _ => return Err(invalid("a plugin is not a JSON object".into())),
            }
        }
        if out.is_empty() {
            return Err(invalid("no plugins in the list".into()));
        }
        out
    } else {
        vec![obj.clone()]
    };
    let mut plugins = Vec::new();
    for raw in plugin_objs {
        let plugin_type =
            str_field(&raw, "type").filter(|t| !t.is_empty()).ok_or_else(|| invalid("a plugin has no type".into()))?;
        if plugin_type.contains('/') {
            return Err(invalid(format!("plugin type {plugin_type:?} is not a plain name")));
        }
        plugins.push(PluginConf { plugin_type, raw });
    }
    Ok(NetworkConfList {
        name,
        cni_version,
        disable_check: is_list && bool_field(&obj, "disableCheck"),
        disable_gc: is_list && bool_field(&obj, "disableGC"),
        plugins,
        source: path.to_path_buf(),
        bytes: bytes.to_vec(),
    })
}

/// The names of the entries of `dir` (an empty list if it does not exist).
pub fn dir_names(dir: &Path) -> Result<Vec<String>, ConfError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ConfError::ReadDir { dir: dir.display().to_string(), source }),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfError::ReadDir { dir: dir.display().to_string(), source })?;
        if entry.file_type().map(|t| t.is_file() || t.is_symlink()).unwrap_or(false) {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(names)
}

/// Loads the lexically first valid config of `dir` (files that fail to parse are skipped, as libcni's
/// callers do, but reported if nothing valid is left).
pub fn load_dir(dir: &Path) -> Result<NetworkConfList, ConfError> {
    let mut last_err = None;
    for name in config_files(&dir_names(dir)?) {
        let path = dir.join(&name);
        let bytes =
            std::fs::read(&path).map_err(|source| ConfError::Read { path: path.display().to_string(), source })?;
        match parse(&path, &bytes) {
            Ok(list) => return Ok(list),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.unwrap_or_else(|| ConfError::NoConfig(dir.display().to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_config_files_in_lexical_order() {
        let names: Vec<String> = ["99-b.conf", "10-a.conflist", "README", ".hidden.conf", "50-c.json", "x.conf.bak"]
            .map(String::from)
            .into();
        assert_eq!(config_files(&names), vec!["10-a.conflist", "50-c.json", "99-b.conf"]);
    }

    #[test]
    fn parses_a_list_and_a_single_conf() {
        let list = br#"{"cniVersion":"1.0.0","name":"k","disableCheck":true,"plugins":[{"type":"bridge","bridge":"cni0"},{"type":"portmap"}]}"#;
        let l = parse(Path::new("/x/10-k.conflist"), list).unwrap();
        assert_eq!(l.name, "k");
        assert_eq!(l.cni_version, "1.0.0");
        assert!(l.disable_check);
        assert_eq!(l.plugins.iter().map(|p| p.plugin_type.as_str()).collect::<Vec<_>>(), ["bridge", "portmap"]);
        assert_eq!(l.plugins[0].raw["bridge"], "cni0");

        let single = br#"{"cniVersion":"0.4.0","name":"one","type":"bridge"}"#;
        let s = parse(Path::new("/x/10-one.conf"), single).unwrap();
        assert_eq!(s.plugins.len(), 1);
        assert_eq!(s.cni_version, "0.4.0");
    }

    #[test]
    fn rejects_broken_configs_with_the_reason() {
        let cases: [(&[u8], &str); 4] = [
            (b"{", "EOF"),
            (br#"{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}"#, "no network name"),
            (br#"{"name":"a","plugins":[]}"#, "no plugins"),
            (br#"{"name":"a","plugins":[{"bridge":"x"}]}"#, "no type"),
        ];
        for (bytes, want) in cases {
            let err = parse(Path::new("/d/1.conflist"), bytes).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("/d/1.conflist"), "{err}");
        }
    }

    #[test]
    fn load_dir_skips_invalid_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("05-bad.conflist"), "nope").unwrap();
        std::fs::write(dir.path().join("10-good.conf"), r#"{"name":"good","type":"bridge"}"#).unwrap();
        assert_eq!(load_dir(dir.path()).unwrap().name, "good");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(load_dir(empty.path()), Err(ConfError::NoConfig(_))));
        assert!(matches!(load_dir(&empty.path().join("missing")), Err(ConfError::NoConfig(_))));
    }
}
