//! The CNI error result: `{"cniVersion","code","msg","details"}` with the spec's well-known codes, and the
//! conversion of every module's error into one.

use serde::Serialize;

/// The spec's well-known error codes (SPEC.md, "Error") and knet-cni's own (100 and up).
pub mod code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Unsupported field in the network configuration; the message names the key and value.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables; the message names them.
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// I/O failure (stdin, the IPAM data directory, running a delegated plugin).
    pub const IO_FAILURE: u32 = 5;
    /// Failed to decode content (the network configuration, a delegated plugin's result).
    pub const DECODING_FAILURE: u32 = 6;
    /// Invalid network configuration.
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    /// Try again later: a transient condition.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot service ADD requests.
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    /// STATUS: not available, and existing containers may have limited connectivity.
    pub const LIMITED_CONNECTIVITY: u32 = 51;
    /// knet-cni: a kernel (netlink) operation failed.
    pub const KERNEL: u32 = 100;
    /// knet-cni: CHECK found the attachment differs from what ADD made.
    pub const CHECK_FAILED: u32 = 101;
    /// knet-cni: no free address is left in a range set.
    pub const NO_ADDRESSES: u32 = 102;
    /// knet-cni: the attachment (container ID + ifname) already exists; DEL it first.
    pub const DUPLICATE_ATTACHMENT: u32 = 103;
}

/// A CNI error: a code, a short message and details. Printed on stdout as the spec's error result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", if details.is_empty() { String::new() } else { format!(": {details}") })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError { code, msg: msg.into(), details: String::new() }
    }

    pub fn with_details(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        CniError { code, msg: msg.into(), details: details.into() }
    }

    /// The error result for protocol version `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            cni_version: &'a str,
            code: u32,
            msg: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            details: &'a str,
        }
        serde_json::to_value(Out { cni_version, code: self.code, msg: &self.msg, details: &self.details })
            .unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_spec_error_shape() {
        let e = CniError::with_details(code::INVALID_NETWORK_CONFIG, "Invalid Configuration", "too small");
        assert_eq!(
            e.to_json("1.1.0"),
            serde_json::json!({"cniVersion": "1.1.0", "code": 7, "msg": "Invalid Configuration", "details": "too small"})
        );
        let e = CniError::new(code::UNKNOWN_CONTAINER, "gone");
        assert_eq!(e.to_json("1.0.0"), serde_json::json!({"cniVersion": "1.0.0", "code": 3, "msg": "gone"}));
        assert_eq!(e.to_string(), "gone");
    }
}
