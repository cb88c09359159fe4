//! The token-store key: 32 random bytes, from `$OAUTH_MAIL_PROXY_TOKEN_KEY` (base64)
//! or `<state_dir>/token.key` (base64 text, created with mode 0600 and `O_EXCL` on first
//! use). A new key is never created while token files exist: they could never be
//! decrypted again.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use zeroize::Zeroizing;

use super::store::{StoreError, TOKENS_DIR, io_err, read_bounded, sync_dir, unhex32};

/// Environment variable holding the base64 token-store key.
pub const KEY_ENV: &str = "OAUTH_MAIL_PROXY_TOKEN_KEY";
/// Key file name inside the state directory.
pub const KEY_FILE: &str = "token.key";

/// The 32-byte store key, wiped from memory on drop.
#[derive(Clone)]
pub struct TokenKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey([REDACTED])")
    }
}

impl TokenKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        TokenKey(Zeroizing::new(crate::secret::random_bytes::<32>()))
    }

    /// Decodes standard base64 (padding optional, surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, StoreError> {
        let text = text.trim();
        let decoded = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .map_err(|_| StoreError::Key("not valid base64".into()))?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Key(format!("must be 32 bytes, got {}", decoded.len())))?;
        Ok(TokenKey(Zeroizing::new(bytes)))
    }

    /// Standard base64 with padding.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.as_slice()))
    }

    pub(super) fn cipher(&self) -> XChaCha20Poly1305 {
        // The cipher zeroizes its copy of the key on drop.
        XChaCha20Poly1305::new(self.0.as_slice().into())
    }
}

/// The key from `$OAUTH_MAIL_PROXY_TOKEN_KEY`, if set and not empty.
pub(super) fn from_env() -> Result<Option<TokenKey>, StoreError> {
    match std::env::var(KEY_ENV) {
        Ok(v) if !v.trim().is_empty() => {
            let v = Zeroizing::new(v);
            TokenKey::from_base64(&v)
                .map(Some)
                .map_err(|e| StoreError::Key(format!("${KEY_ENV}: {e}")))
        }
        _ => Ok(None),
    }
}

/// Reads `<state_dir>/token.key`, creating it if missing (and no token files exist).
pub(super) fn load_or_create_key(state_dir: &Path) -> Result<TokenKey, StoreError> {
    let path = state_dir.join(KEY_FILE);
    if let Some(text) = read_bounded(&path)? {
        let mut text = Zeroizing::new(text);
        // A racing first run may have created the file but not written it yet.
        for _ in 0..20 {
            if !text.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            *text = read_bounded(&path)?.unwrap_or_default();
        }
        let s = std::str::from_utf8(&text)
            .map_err(|_| StoreError::Key(format!("{}: not base64 text", path.display())))?;
        return TokenKey::from_base64(s)
            .map_err(|e| StoreError::Key(format!("{}: {e}", path.display())));
    }
    // No key yet. Creating one would orphan existing token files, so refuse.
    let tokens = state_dir.join(TOKENS_DIR);
    if let Ok(entries) = fs::read_dir(&tokens) {
        let n = entries
            .filter_map(Result::ok)
            .filter(|e| unhex32(&e.file_name().to_string_lossy()).is_some())
            .count();
        if n > 0 {
            return Err(StoreError::Key(format!(
                "{} is missing but {n} token file(s) exist in {}; restore the key (or set ${KEY_ENV}), or delete the token files and log in again",
                path.display(),
                tokens.display()
            )));
        }
    }
    let key = TokenKey::generate();
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path);
    match created {
        Ok(mut f) => {
            let mut text = key.to_base64();
            text.push('\n');
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(io_err("write", &path))?;
            sync_dir(state_dir)?;
            Ok(key)
        }
        // Another process won the race: use its key.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(state_dir),
        Err(e) => Err(io_err("create", &path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn key_file_created_0600_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("s");
        super::super::store::ensure_private_dir(&state).unwrap();
        let k1 = load_or_create_key(&state).unwrap();
        let key_path = state.join(KEY_FILE);
        let mode = fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let k2 = load_or_create_key(&state).unwrap();
        assert_eq!(k1.0.as_slice(), k2.0.as_slice());

        // Losing the key while tokens exist must not silently create a new one.
        let store = super::super::store::TokenStore::open_with_key(&state, k1).unwrap();
        let rec = super::super::store::TokenRecord {
            account: "bob".into(),
            access_token: "t".into(),
            refresh_token: None,
            expires_at: None,
            scopes: vec![],
            obtained_at: 0,
            last_refresh: None,
            needs_login: None,
            refresh_expires_at: None,
        };
        store.save("bob", &rec).unwrap();
        fs::remove_file(&key_path).unwrap();
        let err = load_or_create_key(&state).unwrap_err();
        assert!(
            err.to_string()
                .contains("is missing but 1 token file(s) exist"),
            "{err}"
        );
        assert!(!key_path.exists());
    }

    #[test]
    fn key_parsing() {
        let k = TokenKey::generate();
        let again = TokenKey::from_base64(&format!(" {}\n", k.to_base64().as_str())).unwrap();
        assert_eq!(k.0.as_slice(), again.0.as_slice());
        assert!(TokenKey::from_base64("not base64!").is_err());
        let short = TokenKey::from_base64("AAAA").unwrap_err().to_string();
        assert!(short.contains("32 bytes"), "{short}");
        assert_eq!(format!("{k:?}"), "TokenKey([REDACTED])");
    }
}
