//! Interactive login: the authorization code grant with PKCE (S256), a random `state`
//! and a loopback redirect (RFC 8252 §7.3), or, in manual mode, the redirected-to URL
//! pasted back by the user (for a browser on another machine).
//!
//! The authorization URL is printed alone on one line of stdout (or sent to a channel,
//! for tests and embedding); instructions go to stderr. Tokens are never printed or
//! logged. The other flows live in [`super::device`] and
//! [`super::client_credentials`]; [`super::login::login_account`] picks one.
//!
//! This file holds what the flows share: where the URL goes ([`UrlSink`]), the
//! [`LoginOptions`], [`FlowError`], and saving a login's tokens. The authorization
//! request itself (PKCE, `state`, code exchange) is in `authorization_code`, the
//! loopback-redirect login in `redirect`, the pasted-address (manual) login in
//! `pasted`.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use url::Url;

use super::client::OAuthTokenResponse;
use super::outcome::unix_now;
use super::store::{StoreError, TokenRecord, TokenStore};
use crate::config::Account;

mod authorization_code;
mod pasted;
mod redirect;

pub use authorization_code::AuthorizationRequest;
pub use pasted::{MAX_PASTED_URL, login_authorization_code_manual};
pub use redirect::{login_authorization_code, redirect_tls};

/// Where the authorization URL goes.
#[derive(Debug, Clone, Default)]
pub enum UrlSink {
    /// Print it alone on one line of stdout, with instructions on stderr (the CLI).
    #[default]
    Stdout,
    /// Send it down a channel, print nothing (tests, embedding).
    Channel(tokio::sync::mpsc::UnboundedSender<Url>),
}

/// Options of [`login_authorization_code`].
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// Also try to open the URL with `xdg-open` / `open` (failure is ignored).
    pub open_browser: bool,
    /// How long to wait for the browser to come back.
    pub timeout: Duration,
    /// Loopback port for the redirect; 0 picks a free one.
    pub redirect_port: u16,
    /// The certificate for an `https://` `redirect_uri` (see [`redirect_tls`]);
    /// required for one.
    pub redirect_tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    pub url_sink: UrlSink,
    /// Where the device-code flow shows its verification URI and user code.
    pub device_sink: super::device::DeviceSink,
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions {
            open_browser: true,
            timeout: Duration::from_secs(300),
            redirect_port: 0,
            redirect_tls: None,
            url_sink: UrlSink::Stdout,
            device_sink: Default::default(),
        }
    }
}

/// Why a login failed. `Display` never contains a token or code.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("cannot listen for the redirect on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("no redirect from the browser within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("authorization was denied{}", .description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied { description: Option<String> },
    #[error(
        "the redirect's `state` did not match this login (stale or forged redirect); start the login again"
    )]
    StateMismatch,
    #[error("the authorization server returned error `{error}`{}", .description.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Authorization {
        error: String,
        description: Option<String>,
    },
    #[error("exchanging the authorization code failed: {0}")]
    Exchange(String),
    /// The token request of a flow without a code (device code, client credentials).
    #[error("the token request failed: {0}")]
    Token(String),
    #[error("the device authorization request failed: {0}")]
    DeviceAuthorization(String),
    #[error("the device code expired before the login was approved; run `login` again")]
    DeviceExpired,
    #[error("the login was not approved within {}", humantime::format_duration(*.0))]
    NotApproved(Duration),
    /// The pasted redirect URL (manual mode) could not be used.
    #[error("{0}")]
    ManualInput(String),
    /// The account's configuration does not allow this login.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// Saves the token response of a login (clearing any needs-login mark).
pub(crate) fn save_login(
    account: &Account,
    store: &TokenStore,
    resp: &OAuthTokenResponse,
    requested_scopes: &[String],
) -> Result<TokenRecord, FlowError> {
    let name = &account.username;
    let rec = TokenRecord::from_login(name, resp, requested_scopes, unix_now());
    if rec.access_token.expose_secret().is_empty() {
        return Err(FlowError::Exchange(
            "token endpoint returned an empty access token".into(),
        ));
    }
    if rec.refresh_token.is_none() && account.oauth.flow.is_interactive() {
        tracing::warn!(
            account = name.as_str(),
            "the token endpoint returned no refresh token; the login lasts only until the access token expires (Microsoft needs the `offline_access` scope)"
        );
    }
    store.save(name, &rec)?;
    tracing::info!(
        account = name.as_str(),
        expires_at = rec.expires_at,
        "login complete; tokens saved"
    );
    Ok(rec)
}
