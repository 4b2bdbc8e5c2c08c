//! Polling with a deadline: tests wait for controllers to converge, and fail with what they last saw.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// Calls `check` every 50 ms until it returns `Ok(Some(v))`, and returns `v`; fails after `timeout` with
/// `what` and the last observation (`Ok(None)` carries none; an `Err` is remembered as the observation).
pub async fn until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("(no observation)");
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
