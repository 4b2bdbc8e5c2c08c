//! The execution parameters a runtime passes in `CNI_*` environment variables, read and validated.

use std::path::PathBuf;

use crate::error::{code, CniError};

/// The CNI operation (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Gc,
    Status,
    Version,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

/// The parameters of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdArgs {
    pub container_id: String,
    /// `CNI_NETNS`: a path to the container's network namespace (may be empty for DEL).
    pub netns: String,
    pub ifname: String,
    pub args: CniArgs,
    /// `CNI_PATH`: where delegated plugins are looked up.
    pub path: Vec<PathBuf>,
    /// The raw `CNI_ARGS`, `CNI_PATH` … to hand on to delegated plugins unchanged (they inherit our environment).
    pub raw_args: String,
}

/// The keys of `CNI_ARGS` knet-cni understands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// `MAC=`: the container interface's hardware address.
    pub mac: Option<String>,
    /// `IP=`: an address host-local IPAM should hand out.
    pub ip: Option<String>,
    pub k8s_pod_namespace: Option<String>,
    pub k8s_pod_name: Option<String>,
}

/// Reads the command and its parameters through `get` (the process environment in the binary).
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<(Command, CmdArgs), CniError> {
    let var = |name: &str| get(name).filter(|v| !v.is_empty());
    let command = match var("CNI_COMMAND").as_deref() {
        None => {
            return Err(CniError::new(code::INVALID_ENVIRONMENT, "required env variables [CNI_COMMAND] missing"));
        }
        Some("ADD") => Command::Add,
        Some("DEL") => Command::Del,
        Some("CHECK") => Command::Check,
        Some("GC") => Command::Gc,
        Some("STATUS") => Command::Status,
        Some("VERSION") => Command::Version,
        Some(other) => {
            return Err(CniError::new(code::INVALID_ENVIRONMENT, format!("unknown CNI_COMMAND: {other}")));
        }
    };
    let attachment = matches!(command, Command::Add | Command::Del | Command::Check);
    let needs_netns = matches!(command, Command::Add | Command::Check);
    let mut missing = Vec::new();
    if attachment && var("CNI_CONTAINERID").is_none() {
        missing.push("CNI_CONTAINERID");
    }
    if needs_netns && var("CNI_NETNS").is_none() {
        missing.push("CNI_NETNS");
    }
    if attachment && var("CNI_IFNAME").is_none() {
        missing.push("CNI_IFNAME");
    }
    if !missing.is_empty() {
        return Err(CniError::new(
            code::INVALID_ENVIRONMENT,
            format!("required env variables [{}] missing", missing.join(",")),
        ));
    }
    let mut out = CmdArgs {
        container_id: var("CNI_CONTAINERID").unwrap_or_default(),
        netns: var("CNI_NETNS").unwrap_or_default(),
        ifname: var("CNI_IFNAME").unwrap_or_default(),
        path: var("CNI_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default(),
        raw_args: var("CNI_ARGS").unwrap_or_default(),
        ..CmdArgs::default()
    };
    if attachment {
        validate_container_id(&out.container_id)?;
        validate_ifname(&out.ifname, "CNI_IFNAME")?;
    }
    out.args = parse_cni_args(&out.raw_args)?;
    Ok((command, out))
}

/// A container ID starts with an alphanumeric character, then alphanumerics, `_`, `.` or `-` (SPEC.md).
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    if valid_name(id) {
        return Ok(());
    }
    Err(CniError::with_details(code::INVALID_ENVIRONMENT, "invalid characters in CNI_CONTAINERID", id))
}

/// The same rule for network names.
pub fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A Linux interface name: 1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn validate_ifname(name: &str, what: &str) -> Result<(), CniError> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.len() > 15 {
        Some("is longer than 15 characters")
    } else if name == "." || name == ".." {
        Some("is . or ..")
    } else if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        Some("contains / or : or whitespace characters")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(CniError::with_details(code::INVALID_ENVIRONMENT, format!("{what}: interface name {p}"), name)),
    }
}

/// Parses `CNI_ARGS` (`K=V;K2=V2`). Unknown keys are an error unless `IgnoreUnknown` is true, as with the
/// reference plugins.
pub fn parse_cni_args(raw: &str) -> Result<CniArgs, CniError> {
    let mut out = CniArgs::default();
    let mut unknown = Vec::new();
    let mut ignore_unknown = false;
    for pair in raw.split(';').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(CniError::with_details(
                code::INVALID_ENVIRONMENT,
                "CNI_ARGS: invalid pair, want KEY=VALUE",
                pair,
            ));
        };
        match k {
            "IgnoreUnknown" => ignore_unknown = matches!(v.to_ascii_lowercase().as_str(), "1" | "true"),
            "MAC" => out.mac = Some(v.to_string()),
            "IP" => out.ip = Some(v.to_string()),
            "K8S_POD_NAMESPACE" => out.k8s_pod_namespace = Some(v.to_string()),
            "K8S_POD_NAME" => out.k8s_pod_name = Some(v.to_string()),
            "K8S_POD_INFRA_CONTAINER_ID" | "K8S_POD_UID" => {}
            other => unknown.push(other.to_string()),
        }
    }
    if !unknown.is_empty() && !ignore_unknown {
        return Err(CniError::with_details(
            code::INVALID_ENVIRONMENT,
            format!("CNI_ARGS: unknown args {unknown:?}"),
            "knet-cni understands MAC, IP, IgnoreUnknown and the K8S_POD_* keys; add IgnoreUnknown=1 to pass others",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn reads_an_add() {
        let (cmd, a) = from_env(env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc-1"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web;FOO=bar;MAC=02:00:00:00:00:01"),
        ]))
        .unwrap();
        assert_eq!(cmd, Command::Add);
        assert_eq!(a.path, vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]);
        assert_eq!(a.args.k8s_pod_name.as_deref(), Some("web"));
        assert_eq!(a.args.mac.as_deref(), Some("02:00:00:00:00:01"));
    }

    #[test]
    fn names_every_missing_variable() {
        let e = from_env(env(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "abc")])).unwrap_err();
        assert_eq!(e.code, code::INVALID_ENVIRONMENT);
        assert_eq!(e.msg, "required env variables [CNI_NETNS,CNI_IFNAME] missing");
        let e = from_env(env(&[])).unwrap_err();
        assert_eq!(e.msg, "required env variables [CNI_COMMAND] missing");
        // DEL does not need the netns; GC/STATUS/VERSION need no attachment.
        assert!(from_env(env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "a"), ("CNI_IFNAME", "eth0")])).is_ok());
        assert!(from_env(env(&[("CNI_COMMAND", "GC")])).is_ok());
        assert_eq!(from_env(env(&[("CNI_COMMAND", "NOPE")])).unwrap_err().msg, "unknown CNI_COMMAND: NOPE");
    }

    #[test]
    fn validates_ids_and_names() {
        assert!(validate_container_id("a_b.c-1").is_ok());
        for bad in ["_a", "a/b", "a b", ""] {
            assert_eq!(validate_container_id(bad).unwrap_err().code, code::INVALID_ENVIRONMENT, "{bad}");
        }
        assert!(validate_ifname("eth0", "CNI_IFNAME").is_ok());
        for bad in ["", "0123456789abcdef", ".", "a:b", "a b", "a/b"] {
            assert!(validate_ifname(bad, "CNI_IFNAME").is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_cni_args_need_ignore_unknown() {
        let e = parse_cni_args("FOO=bar").unwrap_err();
        assert_eq!(e.code, code::INVALID_ENVIRONMENT);
        assert!(e.msg.contains("FOO"));
        assert!(parse_cni_args("FOO=bar;IgnoreUnknown=true").is_ok());
        assert!(parse_cni_args("novalue").is_err());
        assert_eq!(parse_cni_args("IP=10.0.0.5").unwrap().ip.as_deref(), Some("10.0.0.5"));
    }
}
