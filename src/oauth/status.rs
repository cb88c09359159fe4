//! [`TokenStatus`]: a secret-free summary of one account's tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{StoreError, TokenRecord, TokenStore};

/// A summary of one account's tokens, without secrets (for `status` / admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    pub account: String,
    /// A record exists in the store.
    pub stored: bool,
    /// Unix seconds; `None` if unknown or nothing stored.
    pub expires_at: Option<u64>,
    /// The access token is usable now (not expired, not rejected upstream).
    pub valid: bool,
    pub has_refresh_token: bool,
    pub needs_login: Option<String>,
    pub obtained_at: Option<u64>,
    pub last_refresh: Option<u64>,
    pub scopes: Vec<String>,
    /// Unix seconds when the refresh token expires, when the server said.
    pub refresh_expires_at: Option<u64>,
    /// The last transient refresh failure seen by this process, if any.
    pub last_error: Option<String>,
    /// The record is encrypted with the client's local password: it exists, but
    /// nothing else about it can be known without that password.
    pub client_password: bool,
}

impl TokenStatus {
    /// The status of a stored record (or of none), as of now.
    pub fn from_record(account: &str, rec: Option<&TokenRecord>) -> Self {
        TokenStatus {
            account: account.to_owned(),
            stored: rec.is_some(),
            expires_at: rec.and_then(|r| r.expires_at),
            valid: rec.is_some_and(|r| r.needs_login.is_none() && valid_beyond(r, Duration::ZERO)),
            has_refresh_token: rec.is_some_and(|r| r.refresh_token.is_some()),
            needs_login: rec.and_then(|r| r.needs_login.clone()),
            obtained_at: rec.map(|r| r.obtained_at),
            last_refresh: rec.and_then(|r| r.last_refresh),
            scopes: rec.map(|r| r.scopes.clone()).unwrap_or_default(),
            refresh_expires_at: rec.and_then(|r| r.refresh_expires_at),
            last_error: None,
            client_password: false,
        }
    }

    /// The status of a record sealed with a client password (contents unknown).
    pub fn sealed(account: &str) -> Self {
        TokenStatus {
            stored: true,
            client_password: true,
            ..Self::from_record(account, None)
        }
    }

    /// The status of `account` as `store` shows it without a password.
    pub fn load(store: &TokenStore, account: &str) -> Result<Self, StoreError> {
        match store.load(account) {
            Ok(rec) => Ok(Self::from_record(account, rec.as_ref())),
            Err(StoreError::PasswordRequired { .. }) => Ok(Self::sealed(account)),
            Err(e) => Err(e),
        }
    }
}

/// True if `rec`'s access token is still valid `margin` from now. A token without a
/// known expiry counts as valid until upstream rejects it.
pub(super) fn valid_beyond(rec: &TokenRecord, margin: Duration) -> bool {
    match rec.expires_at {
        None => true,
        Some(exp) => UNIX_EPOCH + Duration::from_secs(exp) > SystemTime::now() + margin,
    }
}
