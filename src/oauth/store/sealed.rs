//! The on-disk format of a token file and its encryption: a header (`MAGIC`, or
//! `MAGIC_PW` and the salt, for a client-password file), a random nonce, and the
//! XChaCha20-Poly1305 ciphertext of the JSON record ([`super::record`]). The AAD binds
//! the file to SHA-256 of its account name. A client-password file's key is derived
//! with Argon2id from the client's password and the file's salt ([`PasswordKey`]).

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::TokenRecord;
use super::record;
use super::{StoreError, TokenStore};

pub(super) const MAGIC: &[u8; 8] = b"OMPTOK1\n";
const AAD_TAG: &[u8] = b"oauth-mail-proxy token store v1\0";
const NONCE_LEN: usize = 24;
pub(super) const MAGIC_PW: &[u8; 8] = b"OMPTOKP\n";
const AAD_TAG_PW: &[u8] = b"oauth-mail-proxy token store v1 client-password\0";
pub(super) const SALT_LEN: usize = 16;

/// A key derived from a client password and one record's salt. Wiped on drop; lives
/// only for one load or save.
pub(super) struct PasswordKey {
    salt: [u8; SALT_LEN],
    key: Zeroizing<[u8; 32]>,
}

impl PasswordKey {
    pub(super) fn derive(
        password: &SecretString,
        salt: [u8; SALT_LEN],
    ) -> Result<Self, StoreError> {
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
pub(super) enum Seal<'a> {
    StateKey,
    Password(&'a PasswordKey),
}

fn aad(hash: &[u8; 32]) -> Vec<u8> {
    [AAD_TAG, hash.as_slice()].concat()
}

/// The salt of a client-password file.
pub(super) fn salt_of(path: &Path, data: &[u8]) -> Result<[u8; SALT_LEN], StoreError> {
    data.get(MAGIC_PW.len()..MAGIC_PW.len() + SALT_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: "truncated".into(),
        })
}

impl TokenStore {
    /// The file contents for `rec`, stored under `account` (whose SHA-256 is `hash`).
    pub(super) fn encrypt(
        &self,
        path: &Path,
        hash: &[u8; 32],
        account: &str,
        rec: &TokenRecord,
        seal: Seal<'_>,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = record::encode(path, account, rec)?;
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

    /// The record in the file contents `data` (read from `path`).
    pub(super) fn decrypt(
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
        record::decode(path, &plain)
    }
}
