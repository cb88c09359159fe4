//! Interactive login: the authorization code grant with PKCE (S256), a random `state`
//! and a loopback redirect (RFC 8252 §7.3), or, in manual mode, the redirected-to URL
//! pasted back by the user (for a browser on another machine).
//!
//! The authorization URL is printed alone on one line of stdout (or sent to a channel,
//! for tests and embedding); instructions go to stderr. Tokens are never printed or
//! logged. The other flows live in [`super::device`] and
//! [`super::client_credentials`]; [`super::login::login_account`] picks one.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::client::OAuthTokenResponse;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
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

    let tls = match (&account.oauth.redirect_uri, &opts.redirect_tls) {
        (Some(r), None) if r.scheme() == "https" => {
            return Err(FlowError::Config(format!(
                "redirect_uri {r} is https:// but no certificate was given for it"
            )));
        }
        (Some(r), Some(cfg)) if r.scheme() == "https" => {
            Some(tokio_rustls::TlsAcceptor::from(Arc::clone(cfg)))
        }
        _ => None,
    };
    let (listener, redirect) = bind_redirect(account, opts.redirect_port).await?;
    let expected_path = redirect.path().to_owned();
    let pending = Pending::new(account, &redirect)?;

    publish(&pending.url, &opts, name, redirect.as_str());
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let callback =
        loopback::wait_for_callback(listener, tls, &expected_path, &pending.state, deadline).await;
    let Some(callback) = callback else {
        return Err(FlowError::Timeout(opts.timeout));
    };
    pending.finish(callback, account, store, http).await
}

/// The manual variant of [`login_authorization_code`], for a browser on another
/// machine: publishes the URL, then reads the address the browser was redirected to
/// (which fails to load there) from `input`, one line of at most
/// [`MAX_PASTED_URL`] bytes, checks its `state` and exchanges the code. No listener
/// is opened; the redirect URI is the account's `redirect_uri`, or
/// `http://127.0.0.1:PORT/` with `opts.redirect_port` (a free port when 0).
pub async fn login_authorization_code_manual<R: AsyncBufRead + Unpin>(
    account: &Account,
    store: &TokenStore,
    http: &reqwest::Client,
    opts: LoginOptions,
    input: R,
) -> Result<TokenRecord, FlowError> {
    let name = &account.username;
    store.load(name)?;
    let redirect = match &account.oauth.redirect_uri {
        Some(r) => r.clone(),
        None => {
            // A port nobody listens on: the remote browser shows an error page
            // whose address bar holds the code.
            let (listener, url) = bind_redirect(account, opts.redirect_port).await?;
            drop(listener);
            url
        }
    };
    let pending = Pending::new(account, &redirect)?;
    match &opts.url_sink {
        UrlSink::Channel(tx) => {
            let _ = tx.send(pending.url.clone());
        }
        UrlSink::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", pending.url);
            let _ = out.flush();
            eprintln!(
                "To log in account {name}: open the URL above in a browser on any machine and sign in.\n\
                 The browser is then sent to {redirect}... and shows an error page (nothing listens there).\n\
                 Copy the whole address from its address bar, paste it here and press Enter\n\
                 (waiting up to {}):",
                humantime::format_duration(opts.timeout)
            );
        }
    }
    let line = tokio::time::timeout(opts.timeout, read_pasted_line(input))
        .await
        .map_err(|_| FlowError::Timeout(opts.timeout))??;
    let query = pasted_query(&line)?;
    let callback = loopback::callback_from_query(&query, &pending.state).ok_or_else(|| {
        FlowError::ManualInput(
            "the pasted address has neither a `code` nor an `error` parameter; paste the full address the browser was sent to".into(),
        )
    })?;
    pending.finish(callback, account, store, http).await
}

/// Longest line accepted by the manual mode.
pub const MAX_PASTED_URL: usize = 16 * 1024;

/// The first non-blank line of `input`, without its line ending.
async fn read_pasted_line<R: AsyncBufRead + Unpin>(mut input: R) -> Result<String, FlowError> {
    loop {
        let mut buf = Vec::new();
        let n = (&mut input)
            .take(MAX_PASTED_URL as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| FlowError::ManualInput(format!("cannot read the pasted address: {e}")))?;
        if n == 0 {
            return Err(FlowError::ManualInput(
                "no address was pasted (end of input)".into(),
            ));
        }
        if buf.len() > MAX_PASTED_URL {
            return Err(FlowError::ManualInput(format!(
                "the pasted line is longer than {MAX_PASTED_URL} bytes"
            )));
        }
        let line = String::from_utf8(buf)
            .map_err(|_| FlowError::ManualInput("the pasted address is not UTF-8".into()))?;
        let line = line.trim();
        if !line.is_empty() {
            return Ok(line.to_owned());
        }
    }
}

/// The query of a pasted redirect address: a full URL, or just `?code=..&state=..`.
fn pasted_query(line: &str) -> Result<String, FlowError> {
    if let Ok(url) = Url::parse(line)
        && url.has_host()
    {
        return Ok(url.query().unwrap_or_default().to_owned());
    }
    let q = line.split_once('?').map_or(line, |(_, q)| q);
    let q = q.split('#').next().unwrap_or_default();
    if q.contains('=') {
        Ok(q.to_owned())
    } else {
        Err(FlowError::ManualInput(
            "that does not look like the address the browser was sent to (expected http://127.0.0.1:PORT/?code=...&state=...)".into(),
        ))
    }
}

/// The TLS server config for `account`'s `https://` loopback `redirect_uri` (`None`
/// for `http://` or none): the first listener's configured certificate, else the
/// generated local one in `state_dir` (created on first use; its SANs are
/// `localhost`, `127.0.0.1` and `::1`). The browser must trust it (or the user
/// accepts the warning once).
pub fn redirect_tls(
    config: &crate::config::Config,
    account: &Account,
) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, FlowError> {
    if account
        .oauth
        .redirect_uri
        .as_ref()
        .is_none_or(|r| r.scheme() != "https")
    {
        return Ok(None);
    }
    let (cert, key) = match config.listeners.iter().find_map(|l| l.cert.clone()) {
        Some(pair) => pair,
        None => crate::tls::ensure_generated(&config.proxy.state_dir)
            .map_err(|e| FlowError::Config(format!("local certificate: {e}")))?,
    };
    crate::tls::server_config(&cert, &key)
        .map(Some)
        .map_err(|e| FlowError::Config(format!("certificate for the https redirect: {e}")))
}

/// Binds the loopback redirect listener: the account's `redirect_uri` if it has
/// one, else `127.0.0.1:port` (`port` 0 = any free port).
async fn bind_redirect(account: &Account, port: u16) -> Result<(TcpListener, Url), FlowError> {
    let (addr, fixed) = match &account.oauth.redirect_uri {
        Some(r) => {
            let rport = r.port_or_known_default().unwrap_or(80);
            if port != 0 && port != rport {
                return Err(FlowError::Config(format!(
                    "--port {port} conflicts with the account's redirect_uri {r}"
                )));
            }
            let ip = match r.host() {
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
                _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            (SocketAddr::new(ip, rport), Some(r.clone()))
        }
        None => (SocketAddr::from((Ipv4Addr::LOCALHOST, port)), None),
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| FlowError::Bind {
            port: addr.port(),
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| FlowError::Bind { port, source })?
        .port();
    let url = match fixed {
        Some(u) => u,
        None => Url::parse(&format!("http://127.0.0.1:{port}/"))
            .map_err(|e| FlowError::Internal(e.to_string()))?,
    };
    Ok((listener, url))
}

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
struct Pending {
    client: super::client::ConfiguredClient,
    url: Url,
    state: String,
    verifier: oauth2::PkceCodeVerifier,
}

impl Pending {
    fn new(account: &Account, redirect: &Url) -> Result<Pending, FlowError> {
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
    async fn finish(
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
