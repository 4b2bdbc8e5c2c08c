//! The static token file in kube-apiserver's `--token-auth-file` format and the bearer-token authenticator
//! over it.
//!
//! Each record is `token,user,uid[,"group1,group2"]` in CSV (quoted fields may hold commas and `""`), as
//! kube-apiserver reads it: at least 3 columns, records with an empty token skipped, a later duplicate token
//! wins, the fourth column split on commas into groups (empty group names are dropped). Unlike kube-apiserver,
//! the file is re-read when a token is not found and the file changed since it was read, so users added by
//! `knet-apiserver kubeconfig` work without a restart.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use base64::Engine;

use super::{files, PkiError};
use crate::auth::UserInfo;

/// The token file's name in the data directory.
pub const TOKEN_FILE: &str = "tokens.csv";
/// The user the first start makes a token for.
pub const ADMIN_USER: &str = "admin";
/// The group every admin is in: kube-apiserver's superuser group.
pub const MASTERS_GROUP: &str = "system:masters";
/// The group kube-apiserver adds to every authenticated user.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// One record of a token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: String,
    pub user: UserInfo,
}

/// Size and modification time of the token file when it was read: a change means it must be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let meta = fs::metadata(path).ok()?;
        Some(FileStamp { len: meta.len(), modified: meta.modified().ok() })
    }
}

#[derive(Debug, Default)]
struct Table {
    tokens: HashMap<String, UserInfo>,
    /// Records in file order, to find a user's first token.
    records: Vec<TokenRecord>,
    stamp: Option<FileStamp>,
}

impl Table {
    fn read(path: &Path) -> Result<Self, PkiError> {
        let stamp = FileStamp::of(path);
        let text = fs::read_to_string(path).map_err(|e| PkiError::io("reading token file", path, e))?;
        let records = parse_token_file(path, &text)?;
        let tokens = records.iter().map(|r| (r.token.clone(), r.user.clone())).collect();
        Ok(Table { tokens, records, stamp })
    }
}

/// Authenticates bearer tokens against a static token file.
#[derive(Debug)]
pub struct TokenAuthenticator {
    path: PathBuf,
    table: RwLock<Table>,
}

impl TokenAuthenticator {
    /// Loads `explicit_file` if given (it must exist; it is never modified), else `<data_dir>/tokens.csv`,
    /// which is made on first start and always keeps a token for user `admin` in group `system:masters`.
    pub fn load_or_create(data_dir: &Path, explicit_file: Option<&Path>) -> Result<Self, PkiError> {
        if let Some(path) = explicit_file {
            return Self::load(path);
        }
        let path = data_dir.join(TOKEN_FILE);
        add_user_to_file(&path, ADMIN_USER, &[MASTERS_GROUP])?;
        Self::load(&path)
    }

    /// Loads an existing token file.
    pub fn load(path: &Path) -> Result<Self, PkiError> {
        let table = Table::read(path)?;
        Ok(TokenAuthenticator { path: path.to_path_buf(), table: RwLock::new(table) })
    }

    /// The token file this authenticator reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The user a bearer token belongs to, with `system:authenticated` added to its groups as kube-apiserver
    /// does; `None` for an unknown or empty token.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        if token.is_empty() {
            return None;
        }
        let found = self.lookup(token).or_else(|| {
            self.reload_if_changed();
            self.lookup(token)
        });
        found.map(|mut user| {
            if !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
                user.groups.push(AUTHENTICATED_GROUP.to_string());
            }
            user
        })
    }

    /// The first token of `user` in the file, if any.
    pub fn token_for(&self, user: &str) -> Option<String> {
        let table = self.table.read().unwrap_or_else(|p| p.into_inner());
        table.records.iter().find(|r| r.user.username == user).map(|r| r.token.clone())
    }

    fn lookup(&self, token: &str) -> Option<UserInfo> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).tokens.get(token).cloned()
    }

    fn reload_if_changed(&self) {
        let current = FileStamp::of(&self.path);
        if current.is_none() || current == self.table.read().unwrap_or_else(|p| p.into_inner()).stamp {
            return;
        }
        match Table::read(&self.path) {
            Ok(table) => *self.table.write().unwrap_or_else(|p| p.into_inner()) = table,
            Err(e) => tracing::warn!(error = %e, "keeping the previously read tokens"),
        }
    }
}

/// Adds `user` with `groups` to `<data_dir>/tokens.csv` (made if missing) and returns its token; a user that
/// already has a token keeps it (its groups are not changed).
pub fn add_user(data_dir: &Path, user: &str, groups: &[&str]) -> Result<String, PkiError> {
    add_user_to_file(&data_dir.join(TOKEN_FILE), user, groups)
}

/// [`add_user`] for a token file at any path.
pub fn add_user_to_file(path: &Path, user: &str, groups: &[&str]) -> Result<String, PkiError> {
    let invalid = |detail: &str| PkiError::InvalidUser { user: user.to_string(), detail: detail.to_string() };
    if user.is_empty() {
        return Err(invalid("the user name is empty"));
    }
    if user.chars().any(char::is_control) {
        return Err(invalid("the user name has control characters"));
    }
    for &group in groups {
        if group.is_empty() || group.contains(',') || group.chars().any(char::is_control) {
            return Err(invalid(&format!("invalid group name {group:?}: must be non-empty, without commas")));
        }
    }

    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| PkiError::io("creating directory", dir, e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(files::SECRET_MODE)
        .open(path)
        .map_err(|e| PkiError::io("opening token file", path, e))?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(|e| PkiError::io("reading token file", path, e))?;
    if let Some(existing) = parse_token_file(path, &text)?.into_iter().find(|r| r.user.username == user) {
        return Ok(existing.token);
    }

    let token = new_token();
    let mut line = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        line.push('\n');
    }
    let uid = uuid::Uuid::new_v4().to_string();
    line.push_str(&format!("{token},{},{uid}", csv_field(user)));
    if !groups.is_empty() {
        line.push_str(&format!(",\"{}\"", groups.join(",").replace('"', "\"\"")));
    }
    line.push('\n');
    file.seek(SeekFrom::End(0)).map_err(|e| PkiError::io("seeking in token file", path, e))?;
    file.write_all(line.as_bytes()).map_err(|e| PkiError::io("appending to token file", path, e))?;
    file.sync_all().map_err(|e| PkiError::io("syncing token file", path, e))?;
    Ok(token)
}

/// A new random bearer token: 32 bytes, URL-safe base64 (no characters CSV would need to quote).
fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Quotes a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    let needs_quotes = s.contains([',', '"', '\n', '\r']) || s.starts_with([' ', '\t']);
    if needs_quotes {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Parses a token file's text.
pub fn parse_token_file(path: &Path, text: &str) -> Result<Vec<TokenRecord>, PkiError> {
    let err = |line, detail: String| PkiError::TokenFile { path: path.to_path_buf(), line, detail };
    let mut out = Vec::new();
    for (line, fields) in parse_csv(text).map_err(|(line, detail)| err(line, detail.to_string()))? {
        if fields.len() < 3 {
            return Err(err(
                line,
                format!("must have at least 3 columns (token, user name, user uid), found {}", fields.len()),
            ));
        }
        if fields[0].is_empty() {
            tracing::warn!(path = %path.display(), line, "empty token in token file, skipped");
            continue;
        }
        let groups = fields.get(3).map(|g| g.split(',').filter(|s| !s.is_empty()).map(String::from).collect());
        out.push(TokenRecord {
            token: fields[0].clone(),
            user: UserInfo { username: fields[1].clone(), uid: fields[2].clone(), groups: groups.unwrap_or_default() },
        });
    }
    Ok(out)
}

/// A CSV record: the line it starts on and its fields.
type CsvRecord = (usize, Vec<String>);

/// Splits CSV text into records (with the line each starts on) as Go's `encoding/csv` does with default
/// settings: `\r\n` read as `\n`, empty lines skipped, `""` inside quotes is a quote, quoted fields may span
/// lines, a bare quote in an unquoted field is an error.
fn parse_csv(text: &str) -> Result<Vec<CsvRecord>, (usize, &'static str)> {
    let text = text.replace("\r\n", "\n");
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut records = Vec::new();
    while let Some(&c) = chars.peek() {
        if c == '\n' {
            chars.next();
            line += 1;
            continue;
        }
        let start = line;
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err((start, "extraneous or missing \" in quoted-field")),
                        Some('"') => match chars.peek() {
                            Some('"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some(',') | Some('\n') | None => break,
                            Some(_) => return Err((line, "extraneous or missing \" in quoted-field")),
                        },
                        Some('\n') => {
                            line += 1;
                            field.push('\n');
                        }
                        Some(c) => field.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    match c {
                        ',' | '\n' => break,
                        '"' => return Err((line, "bare \" in non-quoted-field")),
                        _ => {
                            field.push(c);
                            chars.next();
                        }
                    }
                }
            }
            fields.push(field);
            match chars.next() {
                Some(',') => continue,
                Some('\n') => line += 1,
                _ => {}
            }
            break;
        }
        records.push((start, fields));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Vec<TokenRecord>, PkiError> {
        parse_token_file(Path::new("tokens.csv"), text)
    }

    #[test]
    fn parses_kube_apiserver_format() {
        let recs = parse("t1,alice,uid1,\"dev,ops\"\r\n\nt2,bob,uid2\n\"t,3\",\"c\"\"d\",u3,\n").unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].token, "t1");
        assert_eq!(
            recs[0].user,
            UserInfo { username: "alice".into(), uid: "uid1".into(), groups: vec!["dev".into(), "ops".into()] }
        );
        assert_eq!(recs[1].user.groups, Vec::<String>::new());
        assert_eq!(recs[2].token, "t,3");
        assert_eq!(recs[2].user.username, "c\"d");
        assert!(recs[2].user.groups.is_empty());
    }

    #[test]
    fn rejects_short_records_and_bad_quotes_with_line_numbers() {
        let e = parse("t1,a,u\n\nt2,b\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "token file tokens.csv, line 3: must have at least 3 columns (token, user name, user uid), found 2"
        );
        let e = parse("t1,a\"b,u\n").unwrap_err().to_string();
        assert!(e.contains("line 1: bare \" in non-quoted-field"), "{e}");
        let e = parse("t1,a,u,\"g\n").unwrap_err().to_string();
        assert!(e.contains("extraneous or missing"), "{e}");
    }

    #[test]
    fn empty_tokens_are_skipped_and_later_duplicates_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        fs::write(&path, ",nobody,u0\nsame,first,u1\nsame,second,u2\n").unwrap();
        let auth = TokenAuthenticator::load(&path).unwrap();
        assert_eq!(auth.authenticate("same").unwrap().username, "second");
        assert_eq!(auth.authenticate(""), None);
    }

    #[test]
    fn first_start_makes_an_admin_and_later_starts_keep_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("not-yet");
        let auth = TokenAuthenticator::load_or_create(&dir, None).unwrap();
        let token = auth.token_for(ADMIN_USER).unwrap();
        let admin = auth.authenticate(&token).unwrap();
        assert_eq!(admin.username, "admin");
        assert_eq!(admin.groups, vec![MASTERS_GROUP.to_string(), AUTHENTICATED_GROUP.to_string()]);
        assert_eq!(auth.authenticate("wrong"), None);
        let path = dir.join(TOKEN_FILE);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let again = TokenAuthenticator::load_or_create(&dir, None).unwrap();
        assert_eq!(again.token_for(ADMIN_USER), Some(token));
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[test]
    fn explicit_file_is_used_as_is_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.csv");
        assert!(TokenAuthenticator::load_or_create(dir.path(), Some(&path)).is_err());
        fs::write(&path, "tok,carol,u\n").unwrap();
        let auth = TokenAuthenticator::load_or_create(dir.path(), Some(&path)).unwrap();
        assert_eq!(auth.authenticate("tok").unwrap().username, "carol");
        assert_eq!(auth.token_for(ADMIN_USER), None);
        assert!(!dir.path().join(TOKEN_FILE).exists());
    }

    #[test]
    fn add_user_appends_reuses_and_is_seen_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        let auth = TokenAuthenticator::load_or_create(dir.path(), None).unwrap();
        let token = add_user(dir.path(), "bob, jr", &["viewers", "dev"]).unwrap();
        assert_eq!(add_user(dir.path(), "bob, jr", &[]).unwrap(), token);
        let bob = auth.authenticate(&token).unwrap();
        assert_eq!(bob.username, "bob, jr");
        assert_eq!(bob.groups, vec!["viewers".to_string(), "dev".to_string(), AUTHENTICATED_GROUP.to_string()]);
        assert_eq!(fs::read_to_string(dir.path().join(TOKEN_FILE)).unwrap().lines().count(), 2);
    }

    #[test]
    fn add_user_repairs_a_missing_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TOKEN_FILE), "tok,carol,u").unwrap();
        let token = add_user(dir.path(), "dave", &[]).unwrap();
        let auth = TokenAuthenticator::load(&dir.path().join(TOKEN_FILE)).unwrap();
        assert_eq!(auth.authenticate("tok").unwrap().username, "carol");
        assert_eq!(auth.authenticate(&token).unwrap().username, "dave");
    }

    #[test]
    fn add_user_rejects_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        assert!(add_user(dir.path(), "", &[]).is_err());
        assert!(add_user(dir.path(), "a\nb", &[]).is_err());
        assert!(add_user(dir.path(), "ok", &["a,b"]).is_err());
        assert!(add_user(dir.path(), "ok", &[""]).is_err());
    }

    #[test]
    fn a_broken_file_keeps_the_previous_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        fs::write(&path, "tok,carol,u\n").unwrap();
        let auth = TokenAuthenticator::load(&path).unwrap();
        fs::write(&path, "tok,carol,u\nbroken\n").unwrap();
        assert_eq!(auth.authenticate("other"), None);
        assert_eq!(auth.authenticate("tok").unwrap().username, "carol");
    }

    #[test]
    fn new_tokens_are_distinct_and_csv_safe() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(a.len(), 43);
        assert_eq!(csv_field(&a), a);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn written_records_read_back(user in "\\PC{1,20}", groups in proptest::collection::vec("[a-z:\"' -]{1,8}", 0..4)) {
            let dir = tempfile::tempdir().unwrap();
            let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
            let token = add_user(dir.path(), &user, &group_refs).unwrap();
            let auth = TokenAuthenticator::load(&dir.path().join(TOKEN_FILE)).unwrap();
            let got = auth.authenticate(&token).unwrap();
            prop_assert_eq!(&got.username, &user);
            let mut want = groups.clone();
            want.push(AUTHENTICATED_GROUP.to_string());
            prop_assert_eq!(got.groups, want);
        }

        #[test]
        fn parsing_never_panics(text in "[a-z,\"\\n\\r ]{0,60}") {
            let _ = parse(&text);
        }
    }
}
