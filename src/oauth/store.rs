//! The encrypted token store: one file per account under `<state_dir>/tokens/`.
//!
//! * File name: lowercase hex of SHA-256 of the account name (no path traversal, no
//!   account names in clear text on disk).
//! * File format: `MAGIC` (8 bytes) ‖ nonce (24 bytes) ‖ XChaCha20-Poly1305 ciphertext
//!   of the JSON record. The AAD is `AAD_TAG` ‖ SHA-256(account name): it binds the file
//!   to its account (a file copied over another account's file fails to decrypt). We
//!   bind the *hash* rather than the name so that [`TokenStore::list`] can decrypt a file
//!   knowing only its file name; since the file name is that hash, this is the same
//!   binding. The record also carries the account name, checked on load.
//! * Key: 32 bytes, from `$OAUTH_MAIL_PROXY_TOKEN_KEY` (base64) or `<state_dir>/token.key`
//!   (base64 text, created 0600 on first use). We refuse to create a new key while token
//!   files exist: they could never be decrypted again.
//! * `encrypt_with = "client-password"` accounts use a second format: `MAGIC_PW`
//!   (8 bytes) ‖ salt (16 bytes) ‖ nonce (24 bytes) ‖ ciphertext, the key derived with
//!   Argon2id (v19, m = 19 MiB, t = 2, p = 1, fixed for this format version) from the
//!   client's local password and the record's random salt; the AAD is `AAD_TAG_PW` ‖
//!   SHA-256(account name). Such a file can be read only with that password
//!   ([`TokenStore::load_with_password`]); [`TokenStore::load`] says so
//!   ([`StoreError::PasswordRequired`]) and [`TokenStore::list`] skips it (its account
//!   name is sealed too).
//! * Writes are atomic (temp file in the same directory, 0600, fsync, rename, fsync dir).
//!   A file that does not decrypt is never overwritten: `save` fails, `delete` removes it.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::key;
pub use super::key::{KEY_ENV, KEY_FILE, TokenKey};

/// Token directory name inside the state directory.
pub const TOKENS_DIR: &str = "tokens";

const MAGIC: &[u8; 8] = b"OMPTOK1\n";
const AAD_TAG: &[u8] = b"oauth-mail-proxy token store v1\0";
const NONCE_LEN: usize = 24;
const MAGIC_PW: &[u8; 8] = b"OMPTOKP\n";
const AAD_TAG_PW: &[u8] = b"oauth-mail-proxy token store v1 client-password\0";
const SALT_LEN: usize = 16;
/// Token files are small; anything bigger is not ours.
const MAX_FILE: u64 = 1 << 20;

/// A token-store error. Every message names the file involved and none contains a
/// secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {op}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("token key: {0}")]
    Key(String),
    #[error(
        "{}: cannot decrypt token file (wrong key, or the file was modified or copied from another account)",
        path.display()
    )]
    Decrypt { path: PathBuf },
    #[error("{}: corrupt token file: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{}: token file is encrypted with the client's local password (encrypt_with = \"client-password\"); it can be read only while that client logs in",
        path.display()
    )]
    PasswordRequired { path: PathBuf },
    #[error(
        "{}: existing token file cannot be decrypted with the current key; refusing to overwrite it (fix the key, or delete the file / run `delete` for this account)",
        path.display()
    )]
    WouldOverwrite { path: PathBuf },
    #[error(
        "{}: permissions {mode:04o} give group/other access to token-store secrets; refusing to start (fix: `chmod {fix} {}`)",
        path.display(),
        path.display()
    )]
    Insecure {
        path: PathBuf,
        mode: u32,
        /// The mode to set: "600" for a file, "700" for a directory.
        fix: &'static str,
    },
}

pub(super) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One account's tokens. Secrets are `SecretString` (redacted `Debug`, wiped on drop).
#[derive(Debug, Clone)]
pub struct TokenRecord {
    /// The account (local user name) this record belongs to.
    pub account: String,
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// Unix seconds; `None` when the server did not say (treated as not expiring).
    pub expires_at: Option<u64>,
    pub scopes: Vec<String>,
    /// Unix seconds of the interactive login that produced the refresh token.
    pub obtained_at: u64,
    /// Unix seconds of the last successful refresh.
    pub last_refresh: Option<u64>,
    /// Set (with the reason) when the refresh token was rejected: a new login is needed.
    pub needs_login: Option<String>,
    /// Unix seconds when the refresh token expires, when the server said
    /// (`refresh_token_expires_in`).
    pub refresh_expires_at: Option<u64>,
}

/// The serialized form; borrowed on the way out so secrets are not copied.
#[derive(Serialize)]
struct WireOut<'a> {
    account: &'a str,
    access_token: &'a str,
    refresh_token: Option<&'a str>,
    expires_at: Option<u64>,
    scopes: &'a [String],
    obtained_at: u64,
    last_refresh: Option<u64>,
    needs_login: Option<&'a str>,
    // Omitted when unknown, so files stay readable by versions without the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_expires_at: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireIn {
    account: String,
    access_token: SecretString,
    refresh_token: Option<SecretString>,
    expires_at: Option<u64>,
    #[serde(default)]
    scopes: Vec<String>,
    obtained_at: u64,
    last_refresh: Option<u64>,
    needs_login: Option<String>,
    #[serde(default)]
    refresh_expires_at: Option<u64>,
}

/// Handle on the token directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TokenStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    key: TokenKey,
    /// Set by [`TokenStore::with_password`]: this account's record is read and written
    /// with this password (client-password format).
    password: Option<(String, SecretString)>,
}

/// A key derived from a client password and one record's salt. Wiped on drop; lives
/// only for one load or save.
struct PasswordKey {
    salt: [u8; SALT_LEN],
    key: Zeroizing<[u8; 32]>,
}

impl PasswordKey {
    fn derive(password: &SecretString, salt: [u8; SALT_LEN]) -> Result<Self, StoreError> {
        let mut key = Zeroizing::new([0u8; 32]);
        argon2::Argon2::default()
            .hash_password_into(password.expose_secret().as_bytes(), &salt, key.as_mut())
            .map_err(|e| StoreError::Key(format!("cannot derive the password key: {e}")))?;
        Ok(PasswordKey { salt, key })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.as_slice().into())
    }
}

/// Which key a record is (to be) sealed with.
enum Seal<'a> {
    StateKey,
    Password(&'a PasswordKey),
}

/// Creates `dir` (and parents) with mode 0700 if it is missing.
pub(super) fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create directory", dir))
}

fn account_hash(account: &str) -> [u8; 32] {
    Sha256::digest(account.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn aad(hash: &[u8; 32]) -> Vec<u8> {
    [AAD_TAG, hash.as_slice()].concat()
}

pub(super) fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    if buf.len() as u64 > MAX_FILE {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: "file too large".into(),
        });
    }
    Ok(Some(buf))
}

impl TokenStore {
    /// Opens the store under `state_dir` (created 0700 if missing), taking the key from
    /// `$OAUTH_MAIL_PROXY_TOKEN_KEY` if set, else from `<state_dir>/token.key` (created
    /// on first use).
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let key = match key::from_env()? {
            Some(key) => key,
            None => {
                ensure_private_dir(state_dir)?;
                key::load_or_create_key(state_dir)?
            }
        };
        Self::open_with_key(state_dir, key)
    }

    /// Opens the store with an explicit key (tests, or keys from elsewhere).
    pub fn open_with_key(state_dir: &Path, key: TokenKey) -> Result<Self, StoreError> {
        ensure_private_dir(state_dir)?;
        let dir = state_dir.join(TOKENS_DIR);
        ensure_private_dir(&dir)?;
        Ok(TokenStore {
            inner: Arc::new(Inner {
                dir,
                key,
                password: None,
            }),
        })
    }

    /// A handle on the same store whose [`load`](Self::load) and [`save`](Self::save)
    /// use `password` for `account` (as [`load_with_password`](Self::load_with_password)
    /// and [`save_with_password`](Self::save_with_password) do): lets the login flows
    /// store a client-password account's tokens unchanged.
    pub fn with_password(&self, account: &str, password: SecretString) -> TokenStore {
        TokenStore {
            inner: Arc::new(Inner {
                dir: self.inner.dir.clone(),
                key: self.inner.key.clone(),
                password: Some((account.to_owned(), password)),
            }),
        }
    }

    fn password_for(&self, account: &str) -> Option<&SecretString> {
        match &self.inner.password {
            Some((a, pw)) if a == account => Some(pw),
            _ => None,
        }
    }

    /// Fails ([`StoreError::Insecure`]) when the state directory, the token directory,
    /// the key file or a token file has group or other permission bits. `serve` runs
    /// this before it starts.
    pub fn check_permissions(&self) -> Result<(), StoreError> {
        let state_dir = self.inner.dir.parent().unwrap_or(Path::new("."));
        super::perms::check_private(state_dir)
    }

    /// The directory holding the token files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file holding `account`'s tokens (which may not exist).
    pub fn path_for(&self, account: &str) -> PathBuf {
        self.inner.dir.join(hex(&account_hash(account)))
    }

    /// Loads `account`'s record; `Ok(None)` when there is none.
    /// A client-password record fails with [`StoreError::PasswordRequired`] (unless
    /// this handle came from [`with_password`](Self::with_password) for `account`).
    pub fn load(&self, account: &str) -> Result<Option<TokenRecord>, StoreError> {
        if let Some(pw) = self.password_for(account) {
            return self.load_with_password(account, pw);
        }
        self.load_inner(account, None)
    }

    /// Loads `account`'s record with the client's local password: a client-password
    /// record (the key derived from `password` and its salt), or a state-key record (so
    /// an account switched to `encrypt_with = "client-password"` is re-encrypted on its
    /// next save). A wrong password is [`StoreError::Decrypt`]; the file is untouched.
    pub fn load_with_password(
        &self,
        account: &str,
        password: &SecretString,
    ) -> Result<Option<TokenRecord>, StoreError> {
        self.load_inner(account, Some(password))
    }

    fn load_inner(
        &self,
        account: &str,
        password: Option<&SecretString>,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let path = self.path_for(account);
        let Some(data) = read_bounded(&path)? else {
            return Ok(None);
        };
        let hash = account_hash(account);
        let rec = if data.starts_with(MAGIC_PW) {
            let Some(pw) = password else {
                return Err(StoreError::PasswordRequired { path });
            };
            let pk = PasswordKey::derive(pw, salt_of(&path, &data)?)?;
            self.decrypt(&path, &hash, &data, Seal::Password(&pk))?
        } else {
            self.decrypt(&path, &hash, &data, Seal::StateKey)?
        };
        if rec.account != account {
            return Err(StoreError::Corrupt {
                path,
                reason: "record names a different account".into(),
            });
        }
        Ok(Some(rec))
    }

    /// Saves `account`'s record atomically. `rec.account` is set to `account`.
    pub fn save(&self, account: &str, rec: &TokenRecord) -> Result<(), StoreError> {
        if let Some(pw) = self.password_for(account) {
            return self.save_with_password(account, rec, pw);
        }
        let path = self.path_for(account);
        let hash = account_hash(account);
        // Never replace a file we cannot read: it may hold tokens under another key.
        if let Some(old) = read_bounded(&path)?
            && self.decrypt(&path, &hash, &old, Seal::StateKey).is_err()
        {
            return Err(StoreError::WouldOverwrite { path });
        }
        let data = self.encrypt(&path, &hash, account, rec, Seal::StateKey)?;
        self.write_atomic(&path, &data)
    }

    /// Saves `account`'s record encrypted with a key derived from the client's local
    /// `password` (the client-password format). An existing file must open with that
    /// password (its salt, and so its derived key, is reused: one derivation per save)
    /// or with the state key; otherwise [`StoreError::WouldOverwrite`], file untouched.
    pub fn save_with_password(
        &self,
        account: &str,
        rec: &TokenRecord,
        password: &SecretString,
    ) -> Result<(), StoreError> {
        let path = self.path_for(account);
        let hash = account_hash(account);
        let pk = match read_bounded(&path)? {
            Some(old) if old.starts_with(MAGIC_PW) => {
                let salt = salt_of(&path, &old)
                    .map_err(|_| StoreError::WouldOverwrite { path: path.clone() })?;
                let pk = PasswordKey::derive(password, salt)?;
                if self
                    .decrypt(&path, &hash, &old, Seal::Password(&pk))
                    .is_err()
                {
                    return Err(StoreError::WouldOverwrite { path });
                }
                pk
            }
            Some(old) if self.decrypt(&path, &hash, &old, Seal::StateKey).is_err() => {
                return Err(StoreError::WouldOverwrite { path });
            }
            _ => PasswordKey::derive(password, crate::secret::random_bytes::<SALT_LEN>())?,
        };
        let data = self.encrypt(&path, &hash, account, rec, Seal::Password(&pk))?;
        self.write_atomic(&path, &data)
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<(), StoreError> {
        let dir = &self.inner.dir;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(io_err("create temporary file in", dir))?;
        let tmp_path = tmp.path().to_path_buf();
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err("chmod", &tmp_path))?;
        tmp.write_all(data).map_err(io_err("write", &tmp_path))?;
        tmp.as_file()
            .sync_all()
            .map_err(io_err("fsync", &tmp_path))?;
        tmp.persist(path)
            .map_err(|e| io_err("rename temporary file to", path)(e.error))?;
        sync_dir(dir)
    }

    /// Removes `account`'s file (even an undecryptable one). `Ok(false)` if there was none.
    pub fn delete(&self, account: &str) -> Result<bool, StoreError> {
        let path = self.path_for(account);
        match fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.inner.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// The account names that have a record, sorted. Fails on the first file that does
    /// not decrypt (naming it); temporary files and foreign names are ignored, and so
    /// are client-password records (their account name is sealed with the password).
    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let dir = &self.inner.dir;
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("list", dir))? {
            let entry = entry.map_err(io_err("list", dir))?;
            let Some(hash) = unhex32(&entry.file_name().to_string_lossy()) else {
                continue;
            };
            let path = entry.path();
            let Some(data) = read_bounded(&path)? else {
                continue; // deleted meanwhile
            };
            if data.starts_with(MAGIC_PW) {
                continue;
            }
            let rec = self.decrypt(&path, &hash, &data, Seal::StateKey)?;
            if account_hash(&rec.account) != hash {
                return Err(StoreError::Corrupt {
                    path,
                    reason: "record does not match its file name".into(),
                });
            }
            names.push(rec.account);
        }
        names.sort();
        Ok(names)
    }

    fn encrypt(
        &self,
        path: &Path,
        hash: &[u8; 32],
        account: &str,
        rec: &TokenRecord,
        seal: Seal<'_>,
    ) -> Result<Vec<u8>, StoreError> {
        let wire = WireOut {
            account,
            access_token: rec.access_token.expose_secret(),
            refresh_token: rec.refresh_token.as_ref().map(|t| t.expose_secret()),
            expires_at: rec.expires_at,
            scopes: &rec.scopes,
            obtained_at: rec.obtained_at,
            last_refresh: rec.last_refresh,
            needs_login: rec.needs_login.as_deref(),
            refresh_expires_at: rec.refresh_expires_at,
        };
        // Pre-size so the plaintext is (usually) never reallocated, leaving no stray copy.
        let mut plain = Zeroizing::new(Vec::with_capacity(8192));
        serde_json::to_writer(&mut *plain, &wire).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("cannot encode record: {e}"),
        })?;
        let nonce_bytes = crate::secret::random_bytes::<NONCE_LEN>();
        let (cipher, aad, header) = match seal {
            Seal::StateKey => (self.inner.key.cipher(), aad(hash), MAGIC.to_vec()),
            Seal::Password(pk) => (
                pk.cipher(),
                [AAD_TAG_PW, hash.as_slice()].concat(),
                [MAGIC_PW.as_slice(), pk.salt.as_slice()].concat(),
            ),
        };
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce_bytes),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::Corrupt {
                path: path.to_path_buf(),
                reason: "encryption failed".into(),
            })?;
        let mut out = Vec::with_capacity(header.len() + NONCE_LEN + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn decrypt(
        &self,
        path: &Path,
        hash: &[u8; 32],
        data: &[u8],
        seal: Seal<'_>,
    ) -> Result<TokenRecord, StoreError> {
        let corrupt = |reason: &str| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let (rest, cipher, aad) = match seal {
            Seal::StateKey => (
                data.strip_prefix(MAGIC.as_slice()),
                self.inner.key.cipher(),
                aad(hash),
            ),
            Seal::Password(pk) => (
                data.strip_prefix(MAGIC_PW.as_slice())
                    .and_then(|r| r.strip_prefix(pk.salt.as_slice())),
                pk.cipher(),
                [AAD_TAG_PW, hash.as_slice()].concat(),
            ),
        };
        let rest =
            rest.ok_or_else(|| corrupt("not an oauth-mail-proxy token file (bad header)"))?;
        if rest.len() < NONCE_LEN + 16 {
            return Err(corrupt("truncated"));
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let plain = Zeroizing::new(
            cipher
                .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
                .map_err(|_| StoreError::Decrypt {
                    path: path.to_path_buf(),
                })?,
        );
        let w: WireIn = serde_json::from_slice(&plain)
            .map_err(|e| corrupt(&format!("bad record: {}", json_err_msg(&e))))?;
        Ok(TokenRecord {
            account: w.account,
            access_token: w.access_token,
            refresh_token: w.refresh_token,
            expires_at: w.expires_at,
            scopes: w.scopes,
            obtained_at: w.obtained_at,
            last_refresh: w.last_refresh,
            needs_login: w.needs_login,
            refresh_expires_at: w.refresh_expires_at,
        })
    }
}

/// The salt of a client-password file.
fn salt_of(path: &Path, data: &[u8]) -> Result<[u8; SALT_LEN], StoreError> {
    data.get(MAGIC_PW.len()..MAGIC_PW.len() + SALT_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: "truncated".into(),
        })
}

/// A position-only description of a JSON error: serde_json messages may quote values.
pub(crate) fn json_err_msg(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
