//! Named app passwords: extra local passwords of an account, one per client or device,
//! so one can be revoked without touching the others.
//!
//! They live in `<state_dir>/app-passwords.json` (mode 0600, written atomically), not
//! in the user's config file, and only as SHA-256 digests:
//!
//! ```json
//! {"version":2,"accounts":{"alice@example.com":[{"name":"helpdesk","sha256":"9f86d0...","created":1700000000}]}}
//! ```
//!
//! **Why a plain digest, not Argon2id.** App passwords are not chosen by people: we
//! generate them (18 random bytes, 144 bits), so there is no dictionary to try and a
//! slow, salted hash buys nothing — guessing a preimage of the digest is as hopeless as
//! guessing the password. A plain (unkeyed) digest needs no key to manage: the CLI
//! writes the file and the proxy reads it with nothing else shared. The digest is
//! domain-separated ([`DIGEST_CONTEXT`]) so it is not a bare SHA-256 of the password.
//! What it buys: checking an app password costs microseconds, so a login pays exactly
//! one Argon2id verification (the account's password) whatever the number of app
//! passwords, and the reply timing does not tell accounts with and without app
//! passwords (or unknown users) apart (see [`crate::accounts`]).
//!
//! Version 1 files held Argon2id hashes; they are refused with an error telling to
//! delete the file and add the app passwords again.
//!
//! The running proxy re-reads the file when its modification time or size changed
//! (one `stat` per login), so `app-password add`/`revoke` take effect without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// File name inside the state directory.
pub const FILE: &str = "app-passwords.json";
/// At most this many app passwords per account. Every login compares this many
/// digests (padding with dummies), so the count of an account's app passwords does not
/// show in the timing.
pub const MAX_PER_ACCOUNT: usize = 16;
/// The file format this version reads and writes.
pub const VERSION: u32 = 2;
/// Prefix hashed before the password (domain separation).
pub const DIGEST_CONTEXT: &[u8] = b"oauth-mail-proxy app password v2\0";
/// Largest file read.
const MAX_FILE: u64 = 4 << 20;
/// Random bytes of a generated password (base64url: 24 characters).
const PASSWORD_BYTES: usize = 18;

/// An app-password error; never contains a password.
#[derive(Debug, thiserror::Error)]
pub enum AppPasswordError {
    #[error("{}: {op}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid app-password file: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("account {account} already has an app password named \"{name}\"")]
    Exists { account: String, name: String },
    #[error("account {account} has no app password named \"{name}\"")]
    NotFound { account: String, name: String },
    #[error("account {account} already has {MAX_PER_ACCOUNT} app passwords; revoke one first")]
    TooMany { account: String },
    #[error("app password name must be 1-64 characters: letters, digits, `.`, `_`, `-`")]
    BadName,
}

/// The digest stored for an app password: SHA-256 of [`DIGEST_CONTEXT`] and the
/// password.
pub fn digest(password: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(DIGEST_CONTEXT);
    h.update(password);
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

/// One stored app password (digest only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppPassword {
    pub name: String,
    /// Lowercase hex of [`digest`] of the password.
    pub sha256: String,
    /// Unix seconds.
    pub created: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileData {
    version: u32,
    #[serde(default)]
    accounts: BTreeMap<String, Vec<AppPassword>>,
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> AppPasswordError + 'a {
    move |source| AppPasswordError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn read(path: &Path) -> Result<FileData, AppPasswordError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileData::default()),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    let corrupt = |reason: String| AppPasswordError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if buf.len() as u64 > MAX_FILE {
        return Err(corrupt("file too large".into()));
    }
    // The version first, so an old file gets the right message (its entries have
    // another shape).
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let json_err = |e: serde_json::Error| corrupt(crate::oauth::store::json_err_msg(&e));
    let version = serde_json::from_slice::<Version>(&buf)
        .map_err(json_err)?
        .version;
    if version == 1 {
        return Err(corrupt(
            "version 1 (Argon2id hashes) is no longer read: app passwords are now stored as \
             SHA-256 digests; delete this file and add the app passwords again \
             (`oauth-mail-proxy app-password add ACCOUNT NAME`)"
                .into(),
        ));
    }
    if version != VERSION {
        return Err(corrupt(format!("unknown version {version}")));
    }
    let data: FileData = serde_json::from_slice(&buf).map_err(json_err)?;
    for p in data.accounts.values().flatten() {
        if unhex(&p.sha256).is_none() {
            return Err(corrupt(format!(
                "app password \"{}\": sha256 is not 64 hex digits",
                p.name
            )));
        }
    }
    Ok(data)
}

fn write(path: &Path, data: &FileData) -> Result<(), AppPasswordError> {
    if let Some(dir) = path.parent() {
        crate::private_file::create_private_dir(dir).map_err(io_err("create directory", dir))?;
    }
    let bytes = serde_json::to_vec_pretty(data).map_err(|e| AppPasswordError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    crate::private_file::write_private_file(path, &bytes).map_err(io_err("write", path))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The path of the app-password file under `state_dir`.
pub fn path_in(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Generates a new app password `name` for `account`, stores its digest and returns
/// the password (to be shown once).
pub fn add(state_dir: &Path, account: &str, name: &str) -> Result<SecretString, AppPasswordError> {
    if !valid_name(name) {
        return Err(AppPasswordError::BadName);
    }
    let path = path_in(state_dir);
    let mut data = read(&path)?;
    data.version = VERSION;
    let list = data.accounts.entry(account.to_string()).or_default();
    if list.iter().any(|p| p.name == name) {
        return Err(AppPasswordError::Exists {
            account: account.into(),
            name: name.into(),
        });
    }
    if list.len() >= MAX_PER_ACCOUNT {
        return Err(AppPasswordError::TooMany {
            account: account.into(),
        });
    }
    let password = SecretString::from(crate::secret::random_token(PASSWORD_BYTES));
    list.push(AppPassword {
        name: name.to_string(),
        sha256: hex(&digest(password.expose_secret().as_bytes())),
        created: unix_now(),
    });
    write(&path, &data)?;
    Ok(password)
}

/// `account`'s app passwords (names, digests, creation times), oldest first.
pub fn list(state_dir: &Path, account: &str) -> Result<Vec<AppPassword>, AppPasswordError> {
    let data = read(&path_in(state_dir))?;
    Ok(data.accounts.get(account).cloned().unwrap_or_default())
}

/// Removes `account`'s app password `name`.
pub fn revoke(state_dir: &Path, account: &str, name: &str) -> Result<(), AppPasswordError> {
    let path = path_in(state_dir);
    let mut data = read(&path)?;
    let not_found = || AppPasswordError::NotFound {
        account: account.into(),
        name: name.into(),
    };
    let list = data.accounts.get_mut(account).ok_or_else(not_found)?;
    let before = list.len();
    list.retain(|p| p.name != name);
    if list.len() == before {
        return Err(not_found());
    }
    if list.is_empty() {
        data.accounts.remove(account);
    }
    data.version = VERSION;
    write(&path, &data)
}

/// The app-password file as the running proxy sees it: cached, re-read when the
/// file's modification time or size changes.
#[derive(Debug, Clone)]
pub struct AppPasswords {
    path: Option<PathBuf>,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Debug, Default)]
struct Cache {
    /// (mtime, length, inode) of the file read, `None` when it did not exist. Writes
    /// replace the file by rename, so the inode changes on every write.
    stamp: Option<(SystemTime, u64, u64)>,
    loaded: bool,
    accounts: Arc<BTreeMap<String, Vec<AppPassword>>>,
}

impl AppPasswords {
    /// No app passwords at all.
    pub fn none() -> Self {
        AppPasswords {
            path: None,
            cache: Arc::default(),
        }
    }

    /// App passwords from `<state_dir>/app-passwords.json`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        AppPasswords {
            path: Some(path_in(state_dir)),
            cache: Arc::default(),
        }
    }

    /// `(name, digest)` of `account`'s app passwords (at most [`MAX_PER_ACCOUNT`]),
    /// re-reading the file if it changed. A file that cannot be read is logged and
    /// counts as no app passwords.
    pub fn for_account(&self, account: &str) -> Vec<(String, [u8; 32])> {
        let Some(path) = &self.path else {
            return Vec::new();
        };
        use std::os::unix::fs::MetadataExt;
        let stamp = std::fs::metadata(path).ok().map(|m| {
            let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            (mtime, m.len(), m.ino())
        });
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if !cache.loaded || cache.stamp != stamp {
            match read(path) {
                Ok(data) => cache.accounts = Arc::new(data.accounts),
                Err(e) => {
                    tracing::error!("app passwords not usable: {e}");
                    cache.accounts = Arc::default();
                }
            }
            cache.stamp = stamp;
            cache.loaded = true;
        }
        cache
            .accounts
            .get(account)
            .map(|v| {
                v.iter()
                    .take(MAX_PER_ACCOUNT)
                    .filter_map(|p| Some((p.name.clone(), unhex(&p.sha256)?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
