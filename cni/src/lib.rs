//! knet-cni: a CNI plugin (spec 1.0/1.1, and 0.3.x/0.4.0 results) that attaches pods to a node-local bridge
//! through veth pairs and assigns addresses host-local style from ranges, with the reference `bridge` and
//! `host-local` plugins' configuration fields and on-disk lease format.
//!
//! [`run`] is the whole plugin: parameters from `CNI_*` variables, the configuration from stdin, a result or
//! a spec error for stdout and an exit code. Deciding (`config`, `ipam::range`, `plan`, `result`) is pure;
//! `net` and `ipam::store` touch the kernel and the disk.

pub mod args;
pub mod cmd;
pub mod config;
pub mod error;
pub mod fault;
pub mod ipam;
pub mod net;
pub mod plan;
pub mod result;
pub mod version;

use args::Command;
use error::{code, CniError};
use serde_json::Value;

/// What the plugin prints on stdout and the exit code it ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub stdout: String,
    pub exit_code: i32,
}

/// Runs one CNI invocation: `env` reads the `CNI_*` variables, `stdin` is the network configuration.
pub fn run(env: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Invocation {
    let answer_version = config::peek_version(stdin)
        .filter(|v| version::SUPPORTED.contains(&v.as_str()))
        .unwrap_or_else(|| version::LATEST.to_string());
    match dispatch(env, stdin) {
        Ok(Some(v)) => Invocation { stdout: v.to_string(), exit_code: 0 },
        Ok(None) => Invocation { stdout: String::new(), exit_code: 0 },
        Err(e) => {
            tracing::debug!(code = e.code, msg = %e.msg, details = %e.details, "failed");
            Invocation { stdout: e.to_json(&answer_version).to_string(), exit_code: 1 }
        }
    }
}

fn dispatch(env: impl Fn(&str) -> Option<String>, stdin: &[u8]) -> Result<Option<Value>, CniError> {
    let (command, args) = args::from_env(env)?;
    if command == Command::Version {
        return Ok(Some(cmd::version::version(stdin)));
    }
    let conf = config::parse(stdin, &args.args)?;
    for key in &conf.unknown_keys {
        tracing::warn!(network = %conf.name, key = %key, "knet-cni does not know this configuration key; passing over it");
    }
    match command {
        Command::Check => version::check_allows(&conf.cni_version, "CHECK", "0.4.0")?,
        Command::Gc => version::check_allows(&conf.cni_version, "GC", "1.1.0")?,
        Command::Status => version::check_allows(&conf.cni_version, "STATUS", "1.1.0")?,
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| CniError::with_details(code::IO_FAILURE, "starting the netlink runtime", e.to_string()))?;
    let outcome = match command {
        Command::Add => {
            runtime.block_on(cmd::add::add(&conf, &args, stdin)).map(|r| Some(r.to_json(&conf.cni_version)))
        }
        Command::Del => runtime.block_on(cmd::del::del(&conf, &args, stdin)).map(|_| None),
        Command::Check => runtime.block_on(cmd::check::check(&conf, &args, stdin)).map(|_| None),
        Command::Gc => cmd::gc::gc(&conf, &args, stdin).map(|_| None),
        Command::Status => runtime.block_on(cmd::status::status(&conf, &args, stdin)).map(|_| None),
        Command::Version => Ok(None),
    };
    // The process ends right after this; shutting the runtime down (and closing its sockets) one by one first
    // would only add latency.
    std::mem::forget(runtime);
    outcome
}
