//! kubelet's atomic writer: a volume's files live in a timestamped directory `..<time>`, `..data` is a symlink
//! to the current one and every top-level entry is a symlink through `..data`, so an update (a changed Secret,
//! a refreshed token) replaces the whole set at once with one rename, and readers never see a mix.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The files of a volume: relative path → (content, mode).
pub type Payload = BTreeMap<String, (Vec<u8>, u32)>;

const DATA: &str = "..data";

/// Whether the directory's current payload is exactly `payload`.
fn current_matches(dir: &Path, payload: &Payload) -> bool {
    let data = dir.join(DATA);
    if !data.exists() {
        return false;
    }
    let mut found = Vec::new();
    collect_files(&data, Path::new(""), &mut found);
    if found.len() != payload.len() {
        return false;
    }
    payload.iter().all(|(rel, (content, mode))| {
        let p = data.join(rel);
        std::fs::read(&p).ok().as_deref() == Some(content.as_slice())
            && std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o7777 == *mode).unwrap_or(false)
    })
}

fn collect_files(base: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(base.join(rel)) else { return };
    for e in entries.flatten() {
        let r = rel.join(e.file_name());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            collect_files(base, &r, out);
        } else {
            out.push(r);
        }
    }
}

/// A relative path inside the volume that cannot escape it.
pub fn valid_path(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.starts_with("..")
        && Path::new(rel).components().all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Makes `dir` hold exactly `payload`; returns whether anything changed.
pub fn write(dir: &Path, payload: &Payload) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    if current_matches(dir, payload) {
        return Ok(false);
    }
    let ts = jiff::Timestamp::now().strftime("..%Y_%m_%d_%H_%M_%S.%f").to_string();
    let new_dir = dir.join(&ts);
    std::fs::create_dir_all(&new_dir)?;
    for (rel, (content, mode)) in payload {
        if !valid_path(rel) {
            return Err(std::io::Error::other(format!("invalid path {rel:?} in volume")));
        }
        let p = new_dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&p, content)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
    }
    let old = std::fs::read_link(dir.join(DATA)).ok();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&ts, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA))?;
    let tops: std::collections::BTreeSet<String> =
        payload.keys().filter_map(|k| k.split('/').next().map(str::to_string)).collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new(DATA).join(top), &link)?;
        }
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") || tops.contains(&name) {
            continue;
        }
        if e.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Some(old) = old {
        if old != Path::new(&ts) {
            let _ = std::fs::remove_dir_all(dir.join(old));
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(items: &[(&str, &str, u32)]) -> Payload {
        items.iter().map(|(k, v, m)| (k.to_string(), (v.as_bytes().to_vec(), *m))).collect()
    }

    #[test]
    fn writes_swaps_and_prunes() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("vol");
        assert!(write(&dir, &payload(&[("a", "1", 0o644), ("sub/b", "2", 0o400)])).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "1");
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "2");
        assert_eq!(std::fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(std::fs::metadata(dir.join("sub/b")).unwrap().permissions().mode() & 0o777, 0o400);
        assert!(!write(&dir, &payload(&[("a", "1", 0o644), ("sub/b", "2", 0o400)])).unwrap(), "unchanged");
        assert!(write(&dir, &payload(&[("a", "changed", 0o644)])).unwrap());
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "changed");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err(), "stale entries go");
        let stamped: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("..2"))
            .collect();
        assert_eq!(stamped.len(), 1, "old payloads are removed");
    }

    #[test]
    fn rejects_escaping_paths() {
        assert!(valid_path("a/b"));
        assert!(!valid_path("../x"));
        assert!(!valid_path("/etc/passwd"));
        assert!(!valid_path("a/../../b"));
        let d = tempfile::tempdir().unwrap();
        assert!(write(d.path(), &payload(&[("../evil", "x", 0o644)])).is_err());
    }
}
