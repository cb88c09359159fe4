//! The client credentials grant (RFC 6749 §4.4): app-only tokens, e.g. a Microsoft
//! 365 service principal with access to many mailboxes. No user, no refresh token:
//! `login` fetches one, and the [`super::TokenManager`] fetches a new one whenever
//! the current one nears its expiry.

use oauth2::{Scope, TokenResponse};

use super::client::{StatusRecorder, oauth_client};
use super::flows::{FlowError, save_login};
use super::outcome::{RefreshOutcome, classify_error, unix_now};
use super::store::{TokenRecord, TokenStore};
use crate::config::Account;

/// The scopes a client-credentials request asks for: `token_scopes`, else `scopes`.
fn scopes(account: &Account) -> &[String] {
    account
        .oauth
        .token_scopes
        .as_deref()
        .unwrap_or(&account.oauth.scopes)
}

/// Asks the token endpoint for a new app-only token. A failure is classified like a
/// refresh: `Transient` (retry later) or `NeedsConsent` (`invalid_client`, ...).
pub async fn fetch(account: &Account, http: &reqwest::Client) -> RefreshOutcome {
    fetch_detailed(account, http).await.0
}

/// [`fetch`], with the server's `Retry-After` when it sent one.
pub async fn fetch_detailed(
    account: &Account,
    http: &reqwest::Client,
) -> (RefreshOutcome, Option<std::time::Duration>) {
    let client = oauth_client(&account.oauth);
    let recorder = StatusRecorder::new(http);
    let request = client
        .exchange_client_credentials()
        .add_scopes(scopes(account).iter().cloned().map(Scope::new))
        .request_async(&recorder);
    let Ok(result) = tokio::time::timeout(super::REFRESH_TIMEOUT, request).await else {
        let msg = format!(
            "token request timed out after {}s",
            super::REFRESH_TIMEOUT.as_secs()
        );
        return (RefreshOutcome::Transient(msg), None);
    };
    let outcome = match result {
        Ok(resp) if resp.access_token().secret().is_empty() => {
            RefreshOutcome::Transient("token endpoint returned an empty access token".into())
        }
        Ok(resp) => {
            let now = unix_now();
            let mut rec = TokenRecord::from_login(&account.username, &resp, scopes(account), now);
            rec.last_refresh = Some(now);
            RefreshOutcome::Refreshed(rec)
        }
        Err(e) => classify_error(recorder.status(), &e),
    };
    (recorder.explain(outcome), recorder.retry_after())
}

/// `login` for a client-credentials account: fetch a token and store it.
pub async fn login_client_credentials(
    account: &Account,
    store: &TokenStore,
    http: &reqwest::Client,
) -> Result<TokenRecord, FlowError> {
    store.load(&account.username)?;
    let client = oauth_client(&account.oauth);
    let recorder = StatusRecorder::new(http);
    let result = client
        .exchange_client_credentials()
        .add_scopes(scopes(account).iter().cloned().map(Scope::new))
        .request_async(&recorder)
        .await;
    let resp = result.map_err(|e| match classify_error(recorder.status(), &e) {
        RefreshOutcome::Transient(m) | RefreshOutcome::NeedsConsent(m) => FlowError::Token(m),
        RefreshOutcome::Refreshed(_) => FlowError::Token("unexpected".into()),
    })?;
    save_login(account, store, &resp, scopes(account))
}
