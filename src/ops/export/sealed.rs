//! The export file format: a passphrase-sealed container (all integers little-endian):
//!
//! | bytes | content                                         |
//! |-------|-------------------------------------------------|
//! | 8     | magic `OMPEXP1\n`                               |
//! | 4+4+4 | Argon2id memory (KiB), iterations, parallelism  |
//! | 16    | random salt                                     |
//! | 24    | random XChaCha20-Poly1305 nonce                 |
//! | rest  | ciphertext of the JSON [`Payload`](super::Payload) |
//!
//! The key is Argon2id(passphrase, salt) with the header's parameters; the whole
//! header is the AEAD's associated data, so a changed parameter, salt or nonce fails
//! like a wrong passphrase. [`seal`] writes this format, [`open`] reads it; neither
//! knows what the plaintext holds.

use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::ops::OpsError;

const MAGIC: &[u8; 8] = b"OMPEXP1\n";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 8 + 12 + SALT_LEN + NONCE_LEN;
/// Argon2id parameters of new exports (memory in KiB, iterations, lanes).
const KDF: (u32, u32, u32) = (64 * 1024, 3, 1);
/// Largest parameters accepted when reading (a crafted file must not exhaust memory).
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;

fn kdf(
    passphrase: &SecretString,
    salt: &[u8],
    (m, t, p): (u32, u32, u32),
) -> Result<Zeroizing<[u8; 32]>, OpsError> {
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| OpsError::Export(format!("bad key derivation parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, key.as_mut())
        .map_err(|e| OpsError::Export(format!("key derivation failed: {e}")))?;
    Ok(key)
}

/// Encrypts `plaintext` into the export format.
pub fn seal(passphrase: &SecretString, plaintext: &[u8]) -> Result<Vec<u8>, OpsError> {
    seal_with(passphrase, plaintext, KDF)
}

fn seal_with(
    passphrase: &SecretString,
    plaintext: &[u8],
    params: (u32, u32, u32),
) -> Result<Vec<u8>, OpsError> {
    let salt = crate::secret::random_bytes::<SALT_LEN>();
    let nonce = crate::secret::random_bytes::<NONCE_LEN>();
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
    out.extend_from_slice(MAGIC);
    for v in [params.0, params.1, params.2] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let key = kdf(passphrase, &salt, params)?;
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            AeadPayload {
                msg: plaintext,
                aad: &out,
            },
        )
        .map_err(|_| OpsError::Export("encryption failed".into()))?;
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts an export file's bytes; a wrong passphrase or any change to the file is
/// the same error.
pub fn open(passphrase: &SecretString, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpsError> {
    if data.len() < HEADER_LEN + 16 || &data[..8] != MAGIC {
        return Err(OpsError::Export(
            "not an oauth-mail-proxy export file".into(),
        ));
    }
    let word = |i: usize| u32::from_le_bytes(data[8 + 4 * i..12 + 4 * i].try_into().unwrap());
    let params = (word(0), word(1), word(2));
    if params.0 > MAX_MEMORY_KIB || params.1 > MAX_ITERATIONS || params.2 > 16 {
        return Err(OpsError::Export(
            "export file asks for excessive key derivation parameters".into(),
        ));
    }
    let salt = &data[20..20 + SALT_LEN];
    let nonce = &data[20 + SALT_LEN..HEADER_LEN];
    let key = kdf(passphrase, salt, params)?;
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            AeadPayload {
                msg: &data[HEADER_LEN..],
                aad: &data[..HEADER_LEN],
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| {
            OpsError::Export(
                "cannot decrypt the export: wrong passphrase, or the file was modified".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so the tests stay fast.
    const FAST: (u32, u32, u32) = (64, 1, 1);

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn round_trip_and_tamper() {
        let sealed = seal_with(&pw("correct horse"), b"{\"hello\":1}", FAST).unwrap();
        assert_eq!(&sealed[..8], MAGIC);
        assert_eq!(
            open(&pw("correct horse"), &sealed).unwrap().as_slice(),
            b"{\"hello\":1}"
        );
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        let e = open(&pw("wrong horse"), &sealed).unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        // Every byte after the magic matters: parameters, salt, nonce, ciphertext, tag.
        for i in [8, 12, 20, 40, HEADER_LEN, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(open(&pw("correct horse"), &t).is_err(), "byte {i}");
        }
        assert!(open(&pw("correct horse"), &sealed[..sealed.len() - 1]).is_err());
        assert!(open(&pw("correct horse"), b"OMPTOK1\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").is_err());
        // Fresh salt and nonce every time.
        let again = seal_with(&pw("correct horse"), b"{\"hello\":1}", FAST).unwrap();
        assert_ne!(sealed, again);
    }

    #[test]
    fn excessive_parameters_refused() {
        let mut sealed = seal_with(&pw("p"), b"x", FAST).unwrap();
        sealed[8..12].copy_from_slice(&(MAX_MEMORY_KIB + 1).to_le_bytes());
        let e = open(&pw("p"), &sealed).unwrap_err();
        assert!(e.to_string().contains("excessive"), "{e}");
    }
}
