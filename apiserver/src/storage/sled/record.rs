//! The on-disk layout of [`super::SledStore`] inside one sled tree.
//!
//! - `m/revision` → the store revision (i64, big-endian). It is written in the same
//!   atomic sled batch as the keys of every group commit, so the revision survives
//!   restarts and is never handed out twice, even when the keys it wrote are deleted.
//! - `k` + key → a record: format version (1 byte), `create_revision` and
//!   `mod_revision` (i64, big-endian), then the value bytes.

use bytes::Bytes;

use super::index::Entry;
use crate::storage::{Revision, StorageError};

/// The sled key of the store revision.
pub const REVISION_KEY: &[u8] = b"m/revision";
/// The prefix of every stored key.
pub const DATA_PREFIX: &[u8] = b"k";

const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 8;

/// The sled key under which `key` is stored.
pub fn data_key(key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_PREFIX.len() + key.len());
    out.extend_from_slice(DATA_PREFIX);
    out.extend_from_slice(key.as_bytes());
    out
}

/// The store key of a sled data key.
pub fn decode_key(raw: &[u8]) -> Result<String, StorageError> {
    let corrupt = |detail: &str| StorageError::Corrupt {
        key: String::from_utf8_lossy(raw).into_owned(),
        detail: detail.to_owned(),
    };
    let rest = raw.strip_prefix(DATA_PREFIX).ok_or_else(|| corrupt("the key lacks the data prefix"))?;
    String::from_utf8(rest.to_vec()).map_err(|_| corrupt("the key is not UTF-8"))
}

/// The record of an entry.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + entry.value.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&entry.create_revision.to_be_bytes());
    out.extend_from_slice(&entry.mod_revision.to_be_bytes());
    out.extend_from_slice(&entry.value);
    out
}

/// The entry of `key` from its record.
pub fn decode_entry(key: &str, raw: &[u8]) -> Result<Entry, StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt { key: key.to_owned(), detail };
    if raw.len() < HEADER_LEN {
        return Err(corrupt(format!("the record is {} bytes, shorter than its {HEADER_LEN}-byte header", raw.len())));
    }
    if raw[0] != FORMAT_V1 {
        return Err(corrupt(format!("unknown record format version {}", raw[0])));
    }
    let create_revision = read_i64(&raw[1..9]);
    let mod_revision = read_i64(&raw[9..17]);
    if create_revision < 1 || mod_revision < create_revision {
        return Err(corrupt(format!(
            "impossible revisions: created at {create_revision}, last written at {mod_revision}"
        )));
    }
    Ok(Entry { value: Bytes::copy_from_slice(&raw[HEADER_LEN..]), create_revision, mod_revision })
}

/// The stored revision value.
pub fn encode_revision(revision: Revision) -> [u8; 8] {
    revision.to_be_bytes()
}

/// The store revision from its stored value.
pub fn decode_revision(raw: &[u8]) -> Result<Revision, StorageError> {
    let corrupt = |detail: String| StorageError::Corrupt { key: "<store revision>".to_owned(), detail };
    if raw.len() != 8 {
        return Err(corrupt(format!("the revision is {} bytes instead of 8", raw.len())));
    }
    let revision = read_i64(raw);
    if revision < 0 {
        return Err(corrupt(format!("negative revision {revision}")));
    }
    Ok(revision)
}

fn read_i64(raw: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(raw);
    i64::from_be_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn entries_round_trip(create in 1i64..i64::MAX / 2, delta in 0i64..1_000_000, value in proptest::collection::vec(any::<u8>(), 0..256)) {
            let entry = Entry { value: Bytes::from(value), create_revision: create, mod_revision: create + delta };
            let decoded = decode_entry("/k", &encode_entry(&entry)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(decoded, entry);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_entry("/k", &raw);
            let _ = decode_revision(&raw);
            let _ = decode_key(&raw);
        }

        #[test]
        fn keys_round_trip(key in "\\PC*") {
            prop_assert_eq!(decode_key(&data_key(&key)).map_err(|e| TestCaseError::fail(e.to_string()))?, key);
        }
    }

    #[test]
    fn short_or_inconsistent_records_are_corrupt() {
        assert!(matches!(decode_entry("/k", &[1, 0, 0]), Err(StorageError::Corrupt { .. })));
        let mut raw = encode_entry(&Entry { value: Bytes::from_static(b"v"), create_revision: 5, mod_revision: 5 });
        raw[0] = 9;
        assert!(matches!(decode_entry("/k", &raw), Err(StorageError::Corrupt { .. })));
        let backwards = encode_entry(&Entry { value: Bytes::new(), create_revision: 7, mod_revision: 3 });
        assert!(matches!(decode_entry("/k", &backwards), Err(StorageError::Corrupt { .. })));
    }

    #[test]
    fn revision_round_trips_and_rejects_bad_lengths() {
        assert_eq!(decode_revision(&encode_revision(42)).ok(), Some(42));
        assert!(decode_revision(&[0; 7]).is_err());
        assert!(decode_revision(&(-1i64).to_be_bytes()).is_err());
    }

    #[test]
    fn data_keys_never_collide_with_the_revision_key() {
        assert!(!data_key("/anything").starts_with(REVISION_KEY));
        assert!(decode_key(REVISION_KEY).is_err());
    }
}
