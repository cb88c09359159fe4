//! The token requests of [`TokenManager`]: a refresh-token grant, a fetch for flows
//! without refresh tokens, and what a transient failure of either does (the backoff).

use std::time::Duration;

use oauth2::{RefreshToken, Scope, TokenUrl};
use secrecy::{ExposeSecret, SecretString};

use super::backoff::Failure;
use super::manager::needs_login;
use super::single_flight::SlotState;
use super::{
    REFRESH_TIMEOUT, RefreshOutcome, TokenError, TokenManager, TokenRecord, client,
    client_credentials, jwt, notify, outcome,
};
use crate::config::{Account, Flow};

impl TokenManager {
    /// Records a transient failure of `account` and starts (or lengthens) its wait;
    /// logs one warning with the reason (never a token or a response body).
    pub(super) fn failed(
        &self,
        name: &str,
        st: &mut SlotState,
        what: &str,
        msg: String,
        retry_after: Option<Duration>,
    ) -> String {
        let f = Failure::next(
            st.last_failure.as_ref(),
            msg,
            self.inner.retry_backoff,
            self.inner.max_retry_backoff,
            retry_after,
        );
        tracing::warn!(
            account = name,
            failures_in_a_row = f.streak,
            retry_after = retry_after.map(|d| d.as_secs()),
            "{what} failed (temporary; stored tokens kept), next try in {}s at the earliest: {}",
            f.remaining().as_secs_f64().ceil() as u64,
            f.msg
        );
        let msg = f.msg.clone();
        st.last_failure = Some(f);
        msg
    }

    /// A new token for a flow without refresh tokens (client credentials), under
    /// the slot's lock: saved and cached on success; a transient failure keeps a
    /// still-valid token; a rejected client marks the account as needing `login`.
    pub(super) async fn fetch_itself(
        &self,
        account: &Account,
        st: &mut SlotState,
        still_valid: Option<SecretString>,
    ) -> Result<SecretString, TokenError> {
        let name = account.username.as_str();
        let (outcome, retry_after) = match account.oauth.flow {
            Flow::ClientCredentials => {
                client_credentials::fetch_detailed(account, &self.inner.http).await
            }
            Flow::JwtBearer => (jwt::fetch(account, &self.inner.http).await, None),
            f => (
                RefreshOutcome::NeedsConsent(format!("flow {} cannot fetch tokens", f.name())),
                None,
            ),
        };
        self.observe_refresh(&outcome);
        match outcome {
            RefreshOutcome::Refreshed(new) => {
                let token = new.access_token.clone();
                let (owned, to_save) = (name.to_owned(), new.clone());
                if let Err(e) = self
                    .blocking(&self.inner.store, move |s| s.save(&owned, &to_save))
                    .await
                {
                    tracing::error!(account = name, "cannot save fetched token: {e}");
                }
                self.notice_resolved(name);
                tracing::info!(
                    account = name,
                    flow = account.oauth.flow.name(),
                    expires_at = new.expires_at,
                    "new access token fetched"
                );
                st.record = Some(new);
                st.rejected = false;
                st.last_failure = None;
                Ok(token)
            }
            RefreshOutcome::Transient(msg) => {
                let msg = self.failed(name, st, "token fetch", msg, retry_after);
                self.notify(name, notify::NoticeReason::FetchFailed, &msg);
                still_valid.ok_or(TokenError::Transient(msg))
            }
            RefreshOutcome::NeedsConsent(msg) => {
                let reason = format!("token request rejected: {msg}");
                tracing::warn!(
                    account = name,
                    "account {name} needs `oauth-mail-proxy login {name}` once its client is fixed: {reason}"
                );
                if let Some(mut marked) = st.record.clone() {
                    marked.needs_login = Some(reason.clone());
                    let (owned, to_save) = (name.to_owned(), marked.clone());
                    if let Err(e) = self
                        .blocking(&self.inner.store, move |s| s.save(&owned, &to_save))
                        .await
                    {
                        tracing::error!(account = name, "cannot record needs-login state: {e}");
                    }
                    st.record = Some(marked);
                }
                self.notify(name, notify::NoticeReason::FetchFailed, &reason);
                Err(needs_login(name, &reason))
            }
        }
    }

    /// One refresh request: its outcome, and the server's `Retry-After` if it sent one.
    pub(super) async fn refresh(
        &self,
        account: &Account,
        rec: &TokenRecord,
        rt: &SecretString,
    ) -> (RefreshOutcome, Option<Duration>) {
        let client = client::oauth_client(&account.oauth)
            .set_token_uri(TokenUrl::from_url(account.oauth.refresh_url.clone()));
        let recorder = client::StatusRecorder::new(&self.inner.http);
        let rt = RefreshToken::new(rt.expose_secret().to_owned());
        let mut request = client.exchange_refresh_token(&rt);
        if let Some(scopes) = &account.oauth.token_scopes {
            request = request.add_scopes(scopes.iter().cloned().map(Scope::new));
        }
        let request = request.request_async(&recorder);
        // Guards the per-account lock even if `http` was built without timeouts.
        let Ok(result) = tokio::time::timeout(REFRESH_TIMEOUT, request).await else {
            let msg = format!(
                "token request timed out after {}s",
                REFRESH_TIMEOUT.as_secs()
            );
            return (RefreshOutcome::Transient(msg), None);
        };
        let outcome =
            outcome::classify_refresh(recorder.status(), result, rec, outcome::unix_now());
        (recorder.explain(outcome), recorder.retry_after())
    }
}
