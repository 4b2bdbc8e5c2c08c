//! CNI specification versions: which ones knet-cni speaks, comparing them, and which commands each allows.

use crate::error::{code, CniError};

/// The spec versions knet-cni accepts and answers in, oldest first.
pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest version knet-cni implements.
pub const LATEST: &str = "1.1.0";

/// A semantic version `major.minor.patch`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses `x.y.z` (a missing version means 0.1.0, as libcni decodes it).
    pub fn parse(s: &str) -> Result<Version, CniError> {
        if s.is_empty() {
            return Ok(Version(0, 1, 0));
        }
        let bad = || {
            CniError::with_details(
                code::DECODING_FAILURE,
                "invalid cniVersion",
                format!("{s:?} is not a semantic version x.y.z"),
            )
        };
        let mut parts = s.split('.');
        let mut next = || -> Result<u32, CniError> { parts.next().ok_or_else(bad)?.parse::<u32>().map_err(|_| bad()) };
        let v = Version(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(v)
    }
}

/// Fails with code 1 unless `config_version` is one knet-cni speaks.
pub fn check_supported(config_version: &str) -> Result<(), CniError> {
    let wanted = if config_version.is_empty() { "0.1.0" } else { config_version };
    if SUPPORTED.contains(&wanted) {
        return Ok(());
    }
    Err(CniError::with_details(
        code::INCOMPATIBLE_VERSION,
        "incompatible CNI versions",
        format!("config is {wanted:?}, plugin supports {SUPPORTED:?}"),
    ))
}

/// Fails with code 1 when `config_version` is older than `minimum`, the first version that has `command`.
pub fn check_allows(config_version: &str, command: &str, minimum: &str) -> Result<(), CniError> {
    if Version::parse(config_version)? < Version::parse(minimum)? {
        return Err(CniError::with_details(
            code::INCOMPATIBLE_VERSION,
            format!("config version does not allow {command}"),
            format!("{command} needs cniVersion {minimum} or later, config is {config_version:?}"),
        ));
    }
    Ok(())
}

/// The version a VERSION answer names: the request's `cniVersion`, else the newest of its `cniVersions` that
/// knet-cni speaks, else the newest knet-cni implements.
pub fn negotiate(cni_version: Option<&str>, cni_versions: &[String]) -> String {
    if let Some(v) = cni_version.filter(|v| !v.is_empty()) {
        return v.to_string();
    }
    cni_versions
        .iter()
        .filter(|v| SUPPORTED.contains(&v.as_str()))
        .filter_map(|v| Version::parse(v).ok().map(|p| (p, v)))
        .max()
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| LATEST.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_versions_numerically() {
        assert!(Version::parse("0.10.0").unwrap() > Version::parse("0.4.0").unwrap());
        assert_eq!(Version::parse("").unwrap(), Version(0, 1, 0));
        assert_eq!(Version::parse("1.x.0").unwrap_err().code, code::DECODING_FAILURE);
        assert_eq!(Version::parse("1.0").unwrap_err().code, code::DECODING_FAILURE);
        assert_eq!(Version::parse("1.0.0.0").unwrap_err().code, code::DECODING_FAILURE);
    }

    #[test]
    fn rejects_unsupported_versions_with_code_1() {
        assert!(check_supported("1.0.0").is_ok());
        let e = check_supported("0.2.0").unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        assert!(e.details.contains("\"0.2.0\""), "{e:?}");
        assert_eq!(check_supported("").unwrap_err().code, code::INCOMPATIBLE_VERSION);
    }

    #[test]
    fn commands_need_their_version() {
        assert!(check_allows("1.1.0", "GC", "1.1.0").is_ok());
        let e = check_allows("1.0.0", "GC", "1.1.0").unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (1, "config version does not allow GC"));
        assert!(check_allows("0.3.1", "CHECK", "0.4.0").is_err());
    }

    #[test]
    fn negotiates_the_answered_version() {
        assert_eq!(negotiate(Some("0.4.0"), &[]), "0.4.0");
        assert_eq!(negotiate(None, &["0.3.1".into(), "1.0.0".into(), "9.0.0".into()]), "1.0.0");
        assert_eq!(negotiate(None, &[]), LATEST);
    }
}
