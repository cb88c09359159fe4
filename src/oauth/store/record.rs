//! What a token file holds once decrypted: one account's [`TokenRecord`], stored as a
//! JSON object. Secrets stay in `SecretString`s; the plaintext JSON lives only in
//! zeroized buffers, and error messages give JSON error positions, never values.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::StoreError;

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

/// The JSON plaintext of `rec`, stored under `account`.
pub(super) fn encode(
    path: &Path,
    account: &str,
    rec: &TokenRecord,
) -> Result<Zeroizing<Vec<u8>>, StoreError> {
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
    Ok(plain)
}

/// The record in a decrypted JSON plaintext.
pub(super) fn decode(path: &Path, plain: &[u8]) -> Result<TokenRecord, StoreError> {
    let w: WireIn = serde_json::from_slice(plain).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("bad record: {}", json_err_msg(&e)),
    })?;
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

/// A position-only description of a JSON error: serde_json messages may quote values.
pub(crate) fn json_err_msg(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}
