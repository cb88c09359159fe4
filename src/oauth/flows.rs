//! Interactive login: the authorization code grant with PKCE (S256), a random `state`
//! and a loopback redirect (RFC 8252 §7.3).
//!
//! The authorization URL is printed alone on one line of stdout (or sent to a channel,
//! for tests and embedding); instructions go to stderr. Tokens are never printed or
//! logged.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use url::Url;

use super::client::{StatusRecorder, oauth_client};
use super::loopback::{self, Callback};
use super::outcome::{RefreshOutcome, classify_error, unix_now};
use super::store::{StoreError, TokenRecord, TokenStore};
use crate::config::Account;

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
    pub url_sink: UrlSink,
}

impl Default for LoginOptions {
    fn default() -> Self {
        LoginOptions {
            open_browser: true,
            timeout: Duration::from_secs(300),
            redirect_port: 0,
            url_sink: UrlSink::Stdout,
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
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// Runs the interactive login for `account` and saves the tokens in `store`.
///
/// Binds `127.0.0.1:<redirect_port>`, publishes the authorization URL (see
/// [`UrlSink`]), waits up to `opts.timeout` for the browser's redirect, exchanges the
/// code with the PKCE verifier and saves the record (clearing any needs-login mark).
pub async fn login_authorization_code(
    account: &Account,
    store: &TokenStore,
    http: &reqwest::Client,
    opts: LoginOptions,
) -> Result<TokenRecord, FlowError> {
    let name = &account.username;
    // Fail before involving the user if the existing file could not be replaced.
    store.load(name)?;

    let port = opts.redirect_port;
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|source| FlowError::Bind { port, source })?;
    let port = listener
        .local_addr()
        .map_err(|source| FlowError::Bind { port, source })?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/");
    let client = oauth_client(&account.oauth).set_redirect_uri(
        RedirectUrl::new(redirect.clone()).map_err(|e| FlowError::Internal(e.to_string()))?,
    );

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = crate::secret::random_token(32);
    let mut request = client
        .authorize_url(|| CsrfToken::new(state.clone()))
        .add_scopes(account.oauth.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    if !account.upstream_username.is_empty() {
        request = request.add_extra_param("login_hint", account.upstream_username.clone());
    }
    let (url, _) = request.url();

    publish(&url, &opts, name, &redirect);
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let code = match loopback::wait_for_callback(listener, &state, deadline).await {
        None => return Err(FlowError::Timeout(opts.timeout)),
        Some(Callback::Code(code)) => code,
        Some(Callback::Denied(description)) => return Err(FlowError::Denied { description }),
        Some(Callback::StateMismatch) => return Err(FlowError::StateMismatch),
        Some(Callback::Error { error, description }) => {
            return Err(FlowError::Authorization { error, description });
        }
    };

    let recorder = StatusRecorder::new(http);
    let result = client
        .exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()))
        .set_pkce_verifier(verifier)
        .request_async(&recorder)
        .await;
    let resp = result.map_err(|e| match classify_error(recorder.status(), &e) {
        RefreshOutcome::Transient(m) | RefreshOutcome::NeedsConsent(m) => FlowError::Exchange(m),
        RefreshOutcome::Refreshed(_) => FlowError::Exchange("unexpected".into()),
    })?;
    let rec = TokenRecord::from_login(name, &resp, &account.oauth.scopes, unix_now());
    if rec.access_token.expose_secret().is_empty() {
        return Err(FlowError::Exchange(
            "token endpoint returned an empty access token".into(),
        ));
    }
    if rec.refresh_token.is_none() {
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

/// Hands the URL to the sink and, if asked, to a browser.
fn publish(url: &Url, opts: &LoginOptions, account: &str, redirect: &str) {
    match &opts.url_sink {
        UrlSink::Channel(tx) => {
            let _ = tx.send(url.clone());
        }
        UrlSink::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{url}");
            let _ = out.flush();
            eprintln!(
                "To log in account {account}, open the URL above (also below) in a browser on this machine.\n\
                 Waiting up to {} for the redirect to {redirect} ...\n{url}",
                humantime::format_duration(opts.timeout)
            );
        }
    }
    if opts.open_browser {
        open_browser(url);
    }
}

fn open_browser(url: &Url) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = tokio::process::Command::new(opener)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reap it in the background; its exit status does not matter.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => eprintln!("Could not start `{opener}` ({e}); open the URL by hand."),
    }
}
