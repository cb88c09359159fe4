//! The authorization request of the authorization code grant: PKCE (S256), a random
//! `state`, the `login_hint` and `prompt` parameters, and the exchange of the returned
//! code for tokens. Used by the loopback and pasted-address logins and, through
//! [`AuthorizationRequest`], by a redirect served elsewhere (the admin listener).

use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::super::client::{StatusRecorder, oauth_client};
use super::super::loopback::{self, Callback};
use super::super::outcome::{RefreshOutcome, classify_error};
use super::super::store::{TokenRecord, TokenStore};
use super::{FlowError, save_login};
use crate::config::Account;

/// The `login_hint` sent for `account`: the configured one (empty = none), else
/// the upstream user name.
fn login_hint(account: &Account) -> Option<&str> {
    match &account.oauth.login_hint {
        Some(h) => Some(h.as_str()),
        None => Some(account.upstream_username.as_str()),
    }
    .filter(|h| !h.is_empty())
}

/// An authorization request waiting for its answer.
pub(super) struct Pending {
    client: super::super::client::ConfiguredClient,
    pub(super) url: Url,
    pub(super) state: String,
    verifier: oauth2::PkceCodeVerifier,
}

impl Pending {
    pub(super) fn new(account: &Account, redirect: &Url) -> Result<Pending, FlowError> {
        let client = oauth_client(&account.oauth).set_redirect_uri(
            RedirectUrl::new(redirect.to_string())
                .map_err(|e| FlowError::Internal(e.to_string()))?,
        );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = crate::secret::random_token(32);
        let mut request = client
            .authorize_url(|| CsrfToken::new(state.clone()))
            .add_scopes(account.oauth.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(hint) = login_hint(account) {
            request = request.add_extra_param("login_hint", hint.to_owned());
        }
        if let Some(prompt) = &account.oauth.prompt {
            request = request.add_extra_param("prompt", prompt.clone());
        }
        let (url, _) = request.url();
        Ok(Pending {
            client,
            url,
            state,
            verifier,
        })
    }

    /// Turns the callback into tokens and saves them.
    pub(super) async fn finish(
        self,
        callback: Callback,
        account: &Account,
        store: &TokenStore,
        http: &reqwest::Client,
    ) -> Result<TokenRecord, FlowError> {
        let code: SecretString = match callback {
            Callback::Code(code) => code,
            Callback::Denied(description) => return Err(FlowError::Denied { description }),
            Callback::StateMismatch => return Err(FlowError::StateMismatch),
            Callback::Error { error, description } => {
                return Err(FlowError::Authorization { error, description });
            }
        };
        let recorder = StatusRecorder::new(http);
        let mut request = self
            .client
            .exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()))
            .set_pkce_verifier(self.verifier);
        if let Some(scopes) = &account.oauth.token_scopes {
            request = request.add_extra_param("scope", scopes.join(" "));
        }
        let result = request.request_async(&recorder).await;
        let resp = result.map_err(|e| match classify_error(recorder.status(), &e) {
            RefreshOutcome::Transient(m) | RefreshOutcome::NeedsConsent(m) => {
                FlowError::Exchange(m)
            }
            RefreshOutcome::Refreshed(_) => FlowError::Exchange("unexpected".into()),
        })?;
        save_login(account, store, &resp, &account.oauth.scopes)
    }
}

/// An authorization-code request (PKCE S256, random `state`) whose redirect is
/// served by someone else, e.g. the admin listener's `/oauth/callback`: build it,
/// send the browser to [`url`](Self::url), then hand the redirect's query to
/// [`finish`](Self::finish). The verifier and the code are never logged.
pub struct AuthorizationRequest(Pending);

impl AuthorizationRequest {
    pub fn new(account: &Account, redirect: &Url) -> Result<Self, FlowError> {
        Pending::new(account, redirect).map(AuthorizationRequest)
    }

    /// Where to send the browser.
    pub fn url(&self) -> &Url {
        &self.0.url
    }

    /// The `state` sent with the request (compare in constant time).
    pub fn state(&self) -> &str {
        &self.0.state
    }

    /// Checks the redirect's `query` (state, error) in constant time, exchanges the
    /// code with the PKCE verifier and saves the tokens (clearing any needs-login
    /// mark).
    pub async fn finish(
        self,
        query: &str,
        account: &Account,
        store: &TokenStore,
        http: &reqwest::Client,
    ) -> Result<TokenRecord, FlowError> {
        let callback = loopback::callback_from_query(query, &self.0.state).ok_or_else(|| {
            FlowError::Authorization {
                error: "invalid_request".into(),
                description: Some("the redirect has neither `code` nor `error`".into()),
            }
        })?;
        self.0.finish(callback, account, store, http).await
    }
}
