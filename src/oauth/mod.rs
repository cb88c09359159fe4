//! OAuth 2.0 tokens: the encrypted store, refresh, and the interactive login.
//!
//! * [`store`] keeps one encrypted record per account on disk;
//! * [`client`] builds the oauth2 client and the shared HTTP client;
//! * [`outcome`] classifies a token-endpoint answer (refreshed / transient / re-consent);
//! * [`flows`] runs the authorization-code + PKCE login with a loopback redirect (or a
//!   pasted redirect address), [`device`] the device-code login (RFC 8628),
//!   [`client_credentials`] the app-only grant; [`login::login_account`] picks one;
//! * [`TokenManager`] (here) hands out access tokens, refreshing each account's token at
//!   most once at a time (single flight), with the store as the source of truth; its
//!   token requests are in `fetch`, and after a transient failure an account backs off
//!   (`backoff`: capped doubling, `Retry-After` honoured) with its stored tokens kept.
//! * `perms` is the check `serve` runs on the store's file permissions; [`TokenStatus`]
//!   (`status`) the secret-free summary for `status` and the admin endpoint.

mod backoff;
pub mod client;
pub mod client_credentials;
pub mod device;
mod fetch;
pub mod flows;
pub mod jwt;
mod key;
pub mod login;
mod loopback;
pub mod notify;
pub mod outcome;
mod perms;
mod status;
pub mod store;

use std::sync::Arc;

use std::time::{Duration, UNIX_EPOCH};

use dashmap::DashMap;
use secrecy::{ExposeSecret, SecretString};

use crate::config::{Account, EncryptWith, Flow};

use backoff::Failure;
pub use backoff::{DEFAULT_RETRY_BACKOFF, MAX_RETRY_BACKOFF};
pub use device::{DevicePrompt, DeviceSink};
pub use flows::{
    FlowError, LoginOptions, UrlSink, login_authorization_code, login_authorization_code_manual,
};
pub use login::login_account;
pub use outcome::RefreshOutcome;
pub use status::TokenStatus;
use status::valid_beyond;
pub use store::{StoreError, TokenKey, TokenRecord, TokenStore};

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

/// Orders records by how recent the grant behind them is.
fn freshness(rec: &TokenRecord) -> (u64, u64) {
    (rec.obtained_at, rec.last_refresh.unwrap_or(0))
}

/// Hands out access tokens. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: TokenStore,
    http: reqwest::Client,
    margin: Duration,
    retry_backoff: Duration,
    max_retry_backoff: Duration,
    refresh_warning: Duration,
    slots: DashMap<String, Arc<Slot>>,
    notices: Option<notify::Notices>,
    /// Told the result of every token request (refresh or app-only fetch): metrics.
    on_refresh: Option<Arc<dyn Fn(bool) + Send + Sync>>,
}

/// Per-account state. The async mutex is the single-flight lock: whoever holds it
/// may refresh; everyone else waits and then finds the fresh token.
#[derive(Default)]
struct Slot {
    /// The access token upstream rejected, set by `invalidate` (which cannot wait for
    /// the lock). It only counts while it is still the cached token, so a session
    /// reporting an old token never discards a fresh one.
    stale: std::sync::Mutex<Option<SecretString>>,
    state: tokio::sync::Mutex<SlotState>,
}

/// The cached token if it can be handed out and stays valid for `margin`.
fn usable(st: &SlotState, margin: Duration) -> Option<&TokenRecord> {
    st.record
        .as_ref()
        .filter(|r| r.needs_login.is_none() && !st.rejected && valid_beyond(r, margin))
}

#[derive(Default)]
struct SlotState {
    record: Option<TokenRecord>,
    /// Upstream rejected the cached access token: do not hand it out again.
    rejected: bool,
    /// The last transient failure, and the wait before the next request.
    last_failure: Option<Failure>,
    /// The near refresh-token expiry was warned about; reset once the stored refresh
    /// token is no longer near its expiry (a new login), so each time it nears one
    /// gives one warning.
    warned_refresh_expiry: bool,
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

    fn observe_refresh(&self, outcome: &RefreshOutcome) {
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

    fn slot(&self, account: &str) -> Arc<Slot> {
        // Clone the Arc out so no dashmap guard lives across an `.await`.
        if let Some(s) = self.inner.slots.get(account) {
            return Arc::clone(&s);
        }
        Arc::clone(&self.inner.slots.entry(account.to_owned()).or_default())
    }

    async fn blocking<T: Send + 'static>(
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

    async fn access_token_locked(
        &self,
        account: &Account,
        store: &TokenStore,
        slot: &Slot,
        st: &mut SlotState,
    ) -> Result<SecretString, TokenError> {
        let name = account.username.as_str();
        let rejected = slot.stale.lock().map(|mut g| g.take()).unwrap_or(None);
        if let (Some(bad), Some(rec)) = (&rejected, &st.record)
            && crate::secret::ct_eq(
                bad.expose_secret().as_bytes(),
                rec.access_token.expose_secret().as_bytes(),
            )
        {
            st.rejected = true;
        }
        let margin = self.inner.margin;
        if let Some(r) = usable(st, margin) {
            return Ok(r.access_token.clone());
        }

        // Slow path. The store is the source of truth: another process (`login`, or a
        // second proxy) may have written a newer grant.
        let owned = name.to_owned();
        match self.blocking(store, move |s| s.load(&owned)).await? {
            None if fetches_itself(account) => st.record = None,
            None => {
                st.record = None;
                return Err(needs_login(name, "no token stored; run login"));
            }
            Some(disk) => {
                let newer = st
                    .record
                    .as_ref()
                    .is_none_or(|c| freshness(&disk) > freshness(c));
                if newer {
                    st.record = Some(disk);
                    st.rejected = false;
                    st.last_failure = None;
                }
            }
        }
        // A record loaded just now (always, for a client-password account) may hold
        // the token upstream rejected.
        if let (Some(bad), Some(rec)) = (&rejected, &st.record)
            && crate::secret::ct_eq(
                bad.expose_secret().as_bytes(),
                rec.access_token.expose_secret().as_bytes(),
            )
        {
            st.rejected = true;
        }
        if let Some(reason) = st.record.as_ref().and_then(|r| r.needs_login.as_ref()) {
            return Err(needs_login(name, reason));
        }
        if let Some(r) = usable(st, margin) {
            return Ok(r.access_token.clone());
        }
        let still_valid = usable(st, Duration::ZERO).map(|r| r.access_token.clone());
        if let Some(f) = &st.last_failure
            && f.active()
        {
            // Backing off: no request until the wait ends.
            return still_valid.ok_or_else(|| TokenError::Transient(f.msg.clone()));
        }
        if fetches_itself(account) {
            return self.fetch_itself(account, st, still_valid).await;
        }
        let rec = st
            .record
            .clone()
            .expect("user flows return above when nothing is stored");
        let Some(refresh_token) = rec.refresh_token.clone() else {
            return still_valid.ok_or_else(|| {
                needs_login(name, "access token expired and no refresh token is stored")
            });
        };

        let (outcome, retry_after) = self.refresh(account, &rec, &refresh_token).await;
        self.observe_refresh(&outcome);
        match outcome {
            RefreshOutcome::Refreshed(new) => {
                self.notice_resolved(name);
                let token = new.access_token.clone();
                let (owned, to_save) = (name.to_owned(), new.clone());
                if let Err(e) = self
                    .blocking(store, move |s| s.save(&owned, &to_save))
                    .await
                {
                    // Keep going with the new token (the old file is left as it was);
                    // a restart may need a new login if the server rotated the
                    // refresh token.
                    tracing::warn!(
                        account = name,
                        "cannot save the refreshed token (using it from memory; the stored file is unchanged): {e}"
                    );
                }
                tracing::info!(
                    account = name,
                    expires_at = new.expires_at,
                    rotated = new.refresh_token.as_ref().map(|t| t.expose_secret())
                        != Some(refresh_token.expose_secret()),
                    "access token refreshed"
                );
                st.record = Some(new);
                st.rejected = false;
                st.last_failure = None;
                Ok(token)
            }
            RefreshOutcome::Transient(msg) => {
                // The stored record (and its refresh token) stays as it is.
                let msg = self.failed(name, st, "token refresh", msg, retry_after);
                still_valid.ok_or(TokenError::Transient(msg))
            }
            RefreshOutcome::NeedsConsent(msg) => {
                let reason = format!("refresh token rejected: {msg}");
                tracing::warn!(
                    account = name,
                    "account {name} needs `oauth-mail-proxy login {name}`: {reason}"
                );
                let mut marked = rec;
                marked.needs_login = Some(reason.clone());
                let (owned, to_save) = (name.to_owned(), marked.clone());
                if let Err(e) = self
                    .blocking(store, move |s| s.save(&owned, &to_save))
                    .await
                {
                    tracing::error!(account = name, "cannot record needs-login state: {e}");
                }
                st.record = Some(marked);
                self.notify(name, notify::NoticeReason::InvalidGrant, &reason);
                Err(needs_login(name, &reason))
            }
        }
    }

    /// Warns once per known refresh-token expiry when it is near: a log line and a
    /// `refresh_token_expiring` notice.
    fn check_refresh_expiry(&self, name: &str, st: &mut SlotState) {
        let now = outcome::unix_now();
        let near = st
            .record
            .as_ref()
            .filter(|r| r.refresh_token.is_some())
            .and_then(|r| r.refresh_expires_at)
            .filter(|&at| at <= now.saturating_add(self.inner.refresh_warning.as_secs()));
        let Some(at) = near else {
            st.warned_refresh_expiry = false;
            return;
        };
        if std::mem::replace(&mut st.warned_refresh_expiry, true) {
            return;
        }
        let when = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(at));
        let message = if at > now {
            format!(
                "the refresh token expires at {when}; run `oauth-mail-proxy login {name}` before then"
            )
        } else {
            format!("the refresh token expired at {when}; run `oauth-mail-proxy login {name}`")
        };
        tracing::warn!(account = name, "{message}");
        self.notify(name, notify::NoticeReason::RefreshTokenExpiring, &message);
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

/// Flows whose tokens the proxy fetches by itself, without a user or a refresh
/// token, whenever the current one nears its expiry.
fn fetches_itself(account: &Account) -> bool {
    matches!(
        account.oauth.flow,
        Flow::ClientCredentials | Flow::JwtBearer
    )
}

fn needs_login(account: &str, reason: &str) -> TokenError {
    TokenError::NeedsLogin {
        account: account.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions and the CLI spawn these futures: they must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(m: &TokenManager, a: &Account, s: &TokenStore, h: &reqwest::Client) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&m.access_token(a));
        is_send(&login_authorization_code(a, s, h, LoginOptions::default()));
    }
}

#[cfg(test)]
#[path = "debug_tests.rs"]
mod debug_tests;
