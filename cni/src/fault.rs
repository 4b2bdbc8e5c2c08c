//! Failure injection for tests of ADD's rollback: when `KNET_CNI_FAULT` names a step, ADD fails right after
//! that step, as if the kernel or the disk had refused the next one. Unset in normal use.

use crate::error::{code, CniError};

/// The environment variable tests set.
pub const ENV: &str = "KNET_CNI_FAULT";

/// The steps of ADD a fault can follow, in order.
pub const STEPS: &[&str] = &["bridge", "veth", "ipam", "addresses", "routes", "gateway"];

/// Fails if a fault is injected after `step`.
pub fn after(step: &str) -> Result<(), CniError> {
    match std::env::var(ENV) {
        Ok(s) if s == step => Err(CniError::with_details(
            code::KERNEL,
            format!("injected failure after step {step:?}"),
            format!("{ENV}={s} is set"),
        )),
        _ => Ok(()),
    }
}
