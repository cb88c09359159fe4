//! What the admin page and API do to an account: start a login (the authorization
//! code flow redirecting back to the admin listener's `/oauth/callback`, the device
//! code flow polled by a background task, or the non-interactive flows), finish the
//! authorization code flow, verify the upstream login, log out.
//!
//! Pending authorization requests live in memory only: at most [`MAX_PENDING`], each
//! for [`PENDING_TTL`], found by their `state` (compared in constant time) and used
//! once. The last result per account ([`Activity`]) is what the page shows.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use tokio::time::Instant;
use url::Url;

use super::AdminState;
use crate::config::{Account, EncryptWith, Flow};
use crate::oauth::device::{DevicePrompt, DeviceSink};
use crate::oauth::flows::{AuthorizationRequest, LoginOptions, UrlSink};

/// Path of the redirect back to the admin listener.
pub const CALLBACK_PATH: &str = "/oauth/callback";
/// How long a started authorization code login may take.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// Most authorization code logins pending at once (the oldest goes first).
pub const MAX_PENDING: usize = 32;
/// How long the device code flow polls before giving up.
pub const DEVICE_TIMEOUT: Duration = Duration::from_secs(900);

/// The last thing done to an account, as the page shows it.
#[derive(Debug, Clone)]
pub struct Activity {
    /// `None` while in progress.
    pub ok: Option<bool>,
    /// What was done (`login`, `verify`, `logout`).
    pub action: &'static str,
    pub text: String,
    /// For a device code login in progress: what the user must enter where.
    pub device: Option<DevicePrompt>,
    pub at: u64,
}

struct PendingLogin {
    account: String,
    request: AuthorizationRequest,
    expires: Instant,
}

#[derive(Default)]
pub(crate) struct Logins {
    pending: Mutex<Vec<PendingLogin>>,
    activity: Mutex<HashMap<String, Activity>>,
}

/// How a login started.
pub enum LoginStart {
    /// Send the browser here (authorization code flow).
    Redirect(Url),
    /// Show this to the user; a task polls until approval (device code flow).
    Device(DevicePrompt),
    /// Finished without interaction (client credentials, JWT bearer).
    Done(String),
}

impl Logins {
    fn activities(&self) -> std::sync::MutexGuard<'_, HashMap<String, Activity>> {
        self.activity.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn record(&self, account: &str, action: &'static str, ok: Option<bool>, text: String) {
        self.set(account, action, ok, text, None);
    }

    fn set(
        &self,
        account: &str,
        action: &'static str,
        ok: Option<bool>,
        text: String,
        device: Option<DevicePrompt>,
    ) {
        let at = crate::oauth::outcome::unix_now();
        self.activities().insert(
            account.to_owned(),
            Activity {
                ok,
                action,
                text,
                device,
                at,
            },
        );
    }

    /// Every account's last activity, by account name.
    pub fn snapshot(&self) -> Vec<(String, Activity)> {
        let mut v: Vec<_> = self
            .activities()
            .iter()
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn activity(&self, account: &str) -> Option<Activity> {
        self.activities().get(account).cloned()
    }

    fn add_pending(&self, p: PendingLogin) {
        let mut v = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        v.retain(|p| p.expires > now);
        if v.len() >= MAX_PENDING {
            v.remove(0);
        }
        v.push(p);
    }

    /// Removes and returns the live pending login whose state is `state`. Every
    /// entry is compared (constant time each).
    fn take_pending(&self, state: &str) -> Option<PendingLogin> {
        let mut v = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        v.retain(|p| p.expires > now);
        let mut found = None;
        for (i, p) in v.iter().enumerate() {
            if crate::secret::ct_eq(p.request.state().as_bytes(), state.as_bytes()) {
                found = Some(i);
            }
        }
        found.map(|i| v.remove(i))
    }
}

/// The concrete account `name` (templates expanded).
pub fn find_account(state: &AdminState, name: &str) -> Result<Account, String> {
    let config = state.config();
    crate::ops::accounts(&config, Some(name))
        .ok()
        .and_then(|v| v.into_iter().find(|a| a.username == name))
        .ok_or_else(|| format!("no account {name} in the configuration"))
}

/// The `Host` header if it is a plain `host[:port]`.
fn host(headers: &HeaderMap) -> Option<&str> {
    let h = headers.get(header::HOST)?.to_str().ok()?;
    let plain = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    plain.then_some(h)
}

/// The redirect URI for a login started from the admin listener: the account's
/// `redirect_uri` when it is this listener's `/oauth/callback` (same port as the
/// request's `Host`), else `http://<Host>/oauth/callback`.
pub fn redirect_uri(account: &Account, headers: &HeaderMap) -> Result<Url, String> {
    let host = host(headers).ok_or("the request has no usable Host header")?;
    let fallback = Url::parse(&format!("http://{host}{CALLBACK_PATH}"))
        .map_err(|e| format!("bad Host header: {e}"))?;
    match &account.oauth.redirect_uri {
        Some(r)
            if r.path() == CALLBACK_PATH
                && r.port_or_known_default() == fallback.port_or_known_default() =>
        {
            Ok(r.clone())
        }
        _ => Ok(fallback),
    }
}

/// Starts `account`'s login with its configured flow.
pub async fn start(
    state: &AdminState,
    account: &Account,
    headers: &HeaderMap,
) -> Result<LoginStart, String> {
    let name = account.username.clone();
    if account.encrypt_with == EncryptWith::ClientPassword {
        return Err(format!(
            "{name}: the tokens are encrypted with the client's password; run `oauth-mail-proxy login {name}` instead"
        ));
    }
    let logins = &state.inner.logins;
    match account.oauth.flow {
        Flow::AuthorizationCode => {
            let redirect = redirect_uri(account, headers)?;
            let request =
                AuthorizationRequest::new(account, &redirect).map_err(|e| e.to_string())?;
            let url = request.url().clone();
            logins.add_pending(PendingLogin {
                account: name.clone(),
                request,
                expires: Instant::now() + PENDING_TTL,
            });
            logins.record(
                &name,
                "login",
                None,
                "waiting for the browser to come back from the authorization server".into(),
            );
            tracing::info!(account = name.as_str(), %redirect, "admin: authorization code login started");
            Ok(LoginStart::Redirect(url))
        }
        Flow::DeviceCode => start_device(state, account).await,
        Flow::ClientCredentials | Flow::JwtBearer => {
            let store = state.inner.tokens.store().clone();
            let r = crate::oauth::login::login_account(
                account,
                &store,
                &state.inner.http,
                LoginOptions::default(),
                None::<tokio::io::BufReader<tokio::io::Empty>>,
            )
            .await;
            finished(state, &name, r.map(|_| ()))
                .map(|_| LoginStart::Done(format!("{name}: token obtained")))
        }
    }
}

/// Records a finished login; clears the needs-login notice on success.
fn finished(
    state: &AdminState,
    name: &str,
    r: Result<(), crate::oauth::flows::FlowError>,
) -> Result<(), String> {
    match r {
        Ok(()) => {
            state.inner.tokens.notice_resolved(name);
            state
                .inner
                .logins
                .record(name, "login", Some(true), "logged in; tokens saved".into());
            tracing::info!(account = name, "admin: login complete");
            Ok(())
        }
        Err(e) => {
            let msg = e.to_string();
            tracing::warn!(account = name, "admin: login failed: {msg}");
            state
                .inner
                .logins
                .record(name, "login", Some(false), format!("login failed: {msg}"));
            Err(msg)
        }
    }
}

async fn start_device(state: &AdminState, account: &Account) -> Result<LoginStart, String> {
    let name = account.username.clone();
    let logins = &state.inner.logins;
    if let Some(a) = logins.activity(&name)
        && a.ok.is_none()
        && let Some(p) = a.device
    {
        return Ok(LoginStart::Device(p)); // already polling
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = LoginOptions {
        open_browser: false,
        timeout: DEVICE_TIMEOUT,
        url_sink: UrlSink::Channel(tokio::sync::mpsc::unbounded_channel().0),
        device_sink: DeviceSink::Channel(tx),
        ..LoginOptions::default()
    };
    logins.record(&name, "login", None, "asking for a device code".into());
    let (st, acc) = (state.clone(), account.clone());
    tokio::spawn(async move {
        let store = st.inner.tokens.store().clone();
        let r = crate::oauth::device::login_device_code(&acc, &store, &st.inner.http, opts).await;
        let _ = finished(&st, &acc.username, r.map(|_| ()));
    });
    match tokio::time::timeout(Duration::from_secs(60), rx.recv()).await {
        Ok(Some(prompt)) => {
            logins.set(
                &name,
                "login",
                None,
                "waiting for approval".into(),
                Some(prompt.clone()),
            );
            Ok(LoginStart::Device(prompt))
        }
        // The task ended without a prompt: it recorded why.
        Ok(None) => Err(logins
            .activity(&name)
            .map(|a| a.text)
            .unwrap_or_else(|| "the device login ended".into())),
        Err(_) => Err("the device authorization endpoint did not answer".into()),
    }
}

/// Handles the browser's return to `/oauth/callback` with `query`: the pending login
/// its `state` names is taken (single use), the code exchanged and the tokens saved.
/// Returns the account and the outcome.
pub async fn callback(state: &AdminState, query: &str) -> Result<String, String> {
    let given = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(p) = state.inner.logins.take_pending(&given) else {
        return Err(
            "this login is unknown or expired (each link works once, for 10 minutes): start it again from the overview".into(),
        );
    };
    let account = find_account(state, &p.account)?;
    let store = state.inner.tokens.store().clone();
    let r = p
        .request
        .finish(query, &account, &store, &state.inner.http)
        .await;
    finished(state, &p.account, r.map(|_| ())).map(|_| p.account.clone())
}

/// Runs `verify` for `account`; records and returns the report.
pub async fn verify(
    state: &AdminState,
    account: &Account,
) -> Result<crate::ops::verify::AccountReport, String> {
    let config = state.config();
    let reports = crate::ops::verify::verify(
        &config,
        &state.inner.tokens,
        Some(&account.username),
        &Default::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let report = reports
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: nothing to verify", account.username))?;
    state.inner.logins.record(
        &account.username,
        "verify",
        Some(report.passed()),
        report.render(),
    );
    Ok(report)
}

/// Revokes (when possible) and deletes `account`'s tokens.
pub async fn logout(
    state: &AdminState,
    account: &Account,
) -> Result<crate::ops::logout::LogoutReport, String> {
    let store = state.inner.tokens.store().clone();
    let name = &account.username;
    let before = store.load(name).ok().flatten();
    let r = crate::ops::logout::logout(account, &store, &state.inner.http).await;
    if let Some(rec) = before {
        // The manager must not hand out its cached copy any more: marked as
        // rejected, it goes back to the (now empty) store.
        state.inner.tokens.invalidate(name, &rec.access_token);
    }
    match &r {
        Ok(rep) => state.inner.logins.record(
            name,
            "logout",
            Some(!rep.revocation_failed),
            rep.done.join("\n"),
        ),
        Err(e) => state
            .inner
            .logins
            .record(name, "logout", Some(false), e.to_string()),
    }
    r.map_err(|e| e.to_string())
}
