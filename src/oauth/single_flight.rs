//! The single-flight path of [`TokenManager::access_token`]: one [`Slot`] per account
//! whose async mutex lets one caller at a time reload the record from the store (the
//! source of truth), back off after a transient failure, or refresh; everyone else
//! waits and then finds the fresh token. Also the warning when a refresh token nears
//! its known expiry.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};

use super::backoff::Failure;
use super::manager::needs_login;
use super::status::valid_beyond;
use super::{RefreshOutcome, TokenError, TokenManager, TokenRecord, TokenStore, notify, outcome};
use crate::config::{Account, Flow};

/// Orders records by how recent the grant behind them is.
fn freshness(rec: &TokenRecord) -> (u64, u64) {
    (rec.obtained_at, rec.last_refresh.unwrap_or(0))
}

/// Per-account state. The async mutex is the single-flight lock: whoever holds it
/// may refresh; everyone else waits and then finds the fresh token.
#[derive(Default)]
pub(super) struct Slot {
    /// The access token upstream rejected, set by `invalidate` (which cannot wait for
    /// the lock). It only counts while it is still the cached token, so a session
    /// reporting an old token never discards a fresh one.
    pub(super) stale: std::sync::Mutex<Option<SecretString>>,
    pub(super) state: tokio::sync::Mutex<SlotState>,
}

/// The cached token if it can be handed out and stays valid for `margin`.
fn usable(st: &SlotState, margin: Duration) -> Option<&TokenRecord> {
    st.record
        .as_ref()
        .filter(|r| r.needs_login.is_none() && !st.rejected && valid_beyond(r, margin))
}

#[derive(Default)]
pub(super) struct SlotState {
    pub(super) record: Option<TokenRecord>,
    /// Upstream rejected the cached access token: do not hand it out again.
    pub(super) rejected: bool,
    /// The last transient failure, and the wait before the next request.
    pub(super) last_failure: Option<Failure>,
    /// The near refresh-token expiry was warned about; reset once the stored refresh
    /// token is no longer near its expiry (a new login), so each time it nears one
    /// gives one warning.
    pub(super) warned_refresh_expiry: bool,
}

impl TokenManager {
    pub(super) fn slot(&self, account: &str) -> Arc<Slot> {
        // Clone the Arc out so no dashmap guard lives across an `.await`.
        if let Some(s) = self.inner.slots.get(account) {
            return Arc::clone(&s);
        }
        Arc::clone(&self.inner.slots.entry(account.to_owned()).or_default())
    }

    pub(super) async fn access_token_locked(
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
    pub(super) fn check_refresh_expiry(&self, name: &str, st: &mut SlotState) {
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
}

/// Flows whose tokens the proxy fetches by itself, without a user or a refresh
/// token, whenever the current one nears its expiry.
fn fetches_itself(account: &Account) -> bool {
    matches!(
        account.oauth.flow,
        Flow::ClientCredentials | Flow::JwtBearer
    )
}
