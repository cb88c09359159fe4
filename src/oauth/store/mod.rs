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
//!
//! The record and its JSON form are in `record`, the file format and its encryption
//! in `sealed`, the file-system side (names, bounded reads, atomic writes, private
//! directories) in `files`; the key in `oauth/key.rs`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;

mod files;
mod record;
mod sealed;

use super::key;
pub use super::key::{KEY_ENV, KEY_FILE, TokenKey};
use files::{account_hash, hex, write_atomic};
pub(super) use files::{ensure_private_dir, io_err, read_bounded, sync_dir, unhex32};
pub use record::TokenRecord;
pub(crate) use record::json_err_msg;
use sealed::{MAGIC_PW, PasswordKey, SALT_LEN, Seal, salt_of};

/// Token directory name inside the state directory.
pub const TOKENS_DIR: &str = "tokens";

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
        write_atomic(&self.inner.dir, &path, &data)
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
        write_atomic(&self.inner.dir, &path, &data)
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
}

#[cfg(test)]
mod tests;
