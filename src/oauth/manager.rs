//! [`TokenManager`]: the per-process handle that hands out access tokens. Its settings
//! (refresh margin, backoff, refresh-token warning, notifier, metrics observer), its
//! public calls, and [`TokenError`], why no token could be had. The per-account
//! single-flight path behind [`TokenManager::access_token`] is in `single_flight`, its
//! token requests in `fetch`.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use secrecy::SecretString;

use super::single_flight::Slot;
use super::{
    DEFAULT_RETRY_BACKOFF, MAX_RETRY_BACKOFF, RefreshOutcome, StoreError, TokenStatus, TokenStore,
    client, notify,
};
use crate::config::{Account, EncryptWith};

/// Default of `[proxy] refresh_token_warning`: warn when a refresh token with a known
/// expiry has less than this left.
pub const DEFAULT_REFRESH_TOKEN_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// Upper bound on one refresh request, whatever the HTTP client's own timeouts
/// ([`client::CONNECT_TIMEOUT`], [`client::REQUEST_TIMEOUT`]).
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(client::REQUEST_TIMEOUT.as_secs() + 5);

/// Why no access token could be had. `Display` never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The user must run `oauth-mail-proxy login <account>`.
    #[error("account {account} needs `oauth-mail-proxy login {account}`: {reason}")]
    NeedsLogin { account: String, reason: String },
    /// Refresh failed for a reason that may go away; try again later.
    #[error("token refresh failed (temporary): {0}")]
    Transient(String),
    /// The account's tokens are encrypted with the client's local password
    /// (`encrypt_with = "client-password"`) and none was given.
    #[error(
        "account {account}'s tokens are encrypted with its client password: they can be used only while that client logs in"
    )]
    PasswordRequired { account: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Hands out access tokens. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct TokenManager {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) store: TokenStore,
    pub(super) http: reqwest::Client,
    pub(super) margin: Duration,
    pub(super) retry_backoff: Duration,
    pub(super) max_retry_backoff: Duration,
    pub(super) refresh_warning: Duration,
    pub(super) slots: DashMap<String, Arc<Slot>>,
    pub(super) notices: Option<notify::Notices>,
    /// Told the result of every token request (refresh or app-only fetch): metrics.
    pub(super) on_refresh: Option<Arc<dyn Fn(bool) + Send + Sync>>,
}

impl TokenManager {
    /// `http` should come from [`client::http_client`] (no redirects, timeouts).
    /// `refresh_margin` is `config::Proxy::refresh_margin`.
    pub fn new(store: TokenStore, http: reqwest::Client, refresh_margin: Duration) -> Self {
        TokenManager {
            inner: Arc::new(Inner {
                store,
                http,
                margin: refresh_margin,
                retry_backoff: DEFAULT_RETRY_BACKOFF,
                max_retry_backoff: MAX_RETRY_BACKOFF,
                refresh_warning: DEFAULT_REFRESH_TOKEN_WARNING,
                slots: DashMap::new(),
                notices: None,
                on_refresh: None,
            }),
        }
    }

    /// Calls `f(ok)` after each token request (refresh or app-only fetch); call
    /// before cloning.
    pub fn with_refresh_observer(mut self, f: Arc<dyn Fn(bool) + Send + Sync>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.on_refresh = Some(f),
            None => tracing::warn!("with_refresh_observer on a shared TokenManager; ignored"),
        }
        self
    }

    pub(super) fn observe_refresh(&self, outcome: &RefreshOutcome) {
        if let Some(f) = &self.inner.on_refresh {
            f(matches!(outcome, RefreshOutcome::Refreshed(_)));
        }
    }

    /// Tells `notifier` when an account stops getting tokens (see [`notify`]); call
    /// before cloning.
    pub fn with_notifier(mut self, notifier: Arc<dyn notify::Notifier>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.notices = Some(notify::Notices::new(notifier)),
            None => tracing::warn!("with_notifier called on a shared TokenManager; ignored"),
        }
        self
    }

    /// Reports that `account` needs attention, once per state change (a no-op
    /// without a notifier).
    pub fn notify(&self, account: &str, reason: notify::NoticeReason, message: &str) {
        if let Some(n) = &self.inner.notices {
            n.raise(account, reason, message);
        }
    }

    /// `account` obtained a token: its next failure is notified again.
    pub fn notice_resolved(&self, account: &str) {
        if let Some(n) = &self.inner.notices {
            n.clear(account);
        }
    }

    /// Sets how long before a known refresh-token expiry the manager warns
    /// (`[proxy] refresh_token_warning`); call before cloning.
    pub fn with_refresh_token_warning(mut self, warning: Duration) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.refresh_warning = warning,
            None => tracing::warn!(
                "with_refresh_token_warning called on a shared TokenManager; ignored"
            ),
        }
        self
    }

    /// Sets the base of the transient-failure backoff (see [`DEFAULT_RETRY_BACKOFF`]:
    /// doubled per failure in a row); call before cloning.
    pub fn with_retry_backoff(mut self, backoff: Duration) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.retry_backoff = backoff,
            None => tracing::warn!("with_retry_backoff called on a shared TokenManager; ignored"),
        }
        self
    }

    /// Sets the cap of the backoff and of a server's `Retry-After` (see
    /// [`MAX_RETRY_BACKOFF`]); call before cloning.
    pub fn with_max_retry_backoff(mut self, cap: Duration) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.max_retry_backoff = cap,
            None => {
                tracing::warn!("with_max_retry_backoff called on a shared TokenManager; ignored")
            }
        }
        self
    }

    pub fn store(&self) -> &TokenStore {
        &self.inner.store
    }

    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        store: &TokenStore,
        f: impl FnOnce(&TokenStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, TokenError> {
        let store = store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| TokenError::Internal(format!("token store task: {e}")))?
            .map_err(TokenError::from)
    }

    /// A valid access token for `account`, refreshing it first if it expires within
    /// the refresh margin. Concurrent calls for one account share one refresh.
    /// A client-password account needs [`access_token_with`](Self::access_token_with).
    pub async fn access_token(&self, account: &Account) -> Result<SecretString, TokenError> {
        self.access_token_with(account, None).await
    }

    /// [`access_token`](Self::access_token), with the client's local password (already
    /// checked against the account's hash) for an `encrypt_with = "client-password"`
    /// account: its record is opened, refreshed and re-encrypted with a key derived
    /// from `password`. Such an account is never served without a password, and its
    /// record and derived key are not kept after the call (the next login derives the
    /// key again). `password` is ignored for other accounts.
    pub async fn access_token_with(
        &self,
        account: &Account,
        password: Option<&SecretString>,
    ) -> Result<SecretString, TokenError> {
        let name = account.username.as_str();
        let sealed = account.encrypt_with == EncryptWith::ClientPassword;
        let store = match (sealed, password) {
            (false, _) => self.inner.store.clone(),
            (true, Some(pw)) => self.inner.store.with_password(name, pw.clone()),
            (true, None) => {
                return Err(TokenError::PasswordRequired {
                    account: name.to_owned(),
                });
            }
        };
        let slot = self.slot(name);
        let mut st = slot.state.lock().await;
        let result = self
            .access_token_locked(account, &store, &slot, &mut st)
            .await;
        if result.is_ok() {
            self.check_refresh_expiry(name, &mut st);
        }
        if sealed {
            // Nothing of a client-password account outlives the call.
            st.record = None;
            st.rejected = false;
        }
        result
    }

    /// Upstream rejected `token` for `account`: if it is still the cached access
    /// token, the next [`access_token`](Self::access_token) call refreshes. A token
    /// that has been replaced already is ignored, so concurrent sessions that all saw
    /// the old token cause one refresh, not one each.
    pub fn invalidate(&self, account: &str, token: &SecretString) {
        if let Ok(mut g) = self.slot(account).stale.lock() {
            *g = Some(token.clone());
        }
    }

    /// A secret-free summary of `account`'s tokens. Reads the store (a small blocking
    /// file read) and adds what this process knows (rejected token, last failure).
    pub fn status(&self, account: &str) -> Result<TokenStatus, TokenError> {
        let mut status = TokenStatus::load(&self.inner.store, account)?;
        let slot = self.inner.slots.get(account).map(|s| Arc::clone(&s));
        if let Some(slot) = slot {
            if slot.stale.lock().is_ok_and(|g| g.is_some()) {
                status.valid = false;
            }
            if let Ok(st) = slot.state.try_lock() {
                if st.rejected {
                    status.valid = false;
                }
                status.last_error = st.last_failure.as_ref().map(|f| f.msg.clone());
            }
        }
        Ok(status)
    }
}

pub(super) fn needs_login(account: &str, reason: &str) -> TokenError {
    TokenError::NeedsLogin {
        account: account.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{LoginOptions, login_authorization_code};

    /// Sessions and the CLI spawn these futures: they must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(m: &TokenManager, a: &Account, s: &TokenStore, h: &reqwest::Client) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&m.access_token(a));
        is_send(&login_authorization_code(a, s, h, LoginOptions::default()));
    }
}
