//! Durable, permission-exact file writes for the PKI material (keys, certificates, tokens, kubeconfigs).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::PkiError;

/// Mode of files holding secrets: private keys, tokens, kubeconfigs.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of public files: certificates.
pub const PUBLIC_MODE: u32 = 0o644;

/// Writes `contents` to `path` atomically (temporary file, fsync, rename, fsync of the directory), creating
/// the parent directory if needed; the file ends up with exactly `mode`, whatever the umask.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| PkiError::io("creating directory", dir, e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    // A stale temporary file from a crash would keep its old mode; start from nothing.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| PkiError::io("creating", &tmp, e))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| PkiError::io("setting the mode of", &tmp, e))?;
        file.write_all(contents).map_err(|e| PkiError::io("writing", &tmp, e))?;
        file.sync_all().map_err(|e| PkiError::io("syncing", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| PkiError::io("renaming a temporary file onto", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the rename itself durable; a directory that cannot be opened for syncing is not an error.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a UTF-8 file, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io("reading", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_sets_exact_mode_and_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        write_atomic(&path, b"one", SECRET_MODE).unwrap();
        write_atomic(&path, b"two", PUBLIC_MODE).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, PUBLIC_MODE);
        write_atomic(&path, b"three", SECRET_MODE).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, SECRET_MODE);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
    }

    #[test]
    fn read_optional_distinguishes_missing_from_present() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert_eq!(read_optional(&path).unwrap(), None);
        fs::write(&path, "x").unwrap();
        assert_eq!(read_optional(&path).unwrap().as_deref(), Some("x"));
    }
}
