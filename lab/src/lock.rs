//! The machine-wide lab lock: `up` and `down` hold an exclusive `flock` on [`LOCK_FILE`] while they run, so
//! two of them never build or tear down at once. `down` removes the file when it is done.

use std::fs::File;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

pub use crate::config::LOCK_FILE;

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("opening the lab lock {path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("another knet-lab up/down is running (it holds {0}); wait for it or stop it")]
    Busy(String),
}

/// Held until dropped.
pub struct LabLock {
    _lock: Flock<File>,
}

impl LabLock {
    /// Takes the lock at `path` without waiting.
    pub fn acquire(path: &Path) -> Result<LabLock, LockError> {
        let shown = path.display().to_string();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|source| LockError::Open { path: shown.clone(), source })?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| LockError::Busy(shown))?;
        Ok(LabLock { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let first = LabLock::acquire(&path).unwrap();
        assert!(matches!(LabLock::acquire(&path), Err(LockError::Busy(_))));
        drop(first);
        LabLock::acquire(&path).unwrap();
    }
}
