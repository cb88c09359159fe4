//! The device authorization grant (RFC 8628), for headless machines: ask the device
//! authorization endpoint for a user code, show it with the verification URI, and
//! poll the token endpoint at the server's interval until the user has approved (or
//! denied) on any other device.
//!
//! Hand-rolled on the shared reqwest client (the interval, `slow_down` and the
//! deadlines are ours to control). Client credentials go in the body, as for every
//! other token request. The device code and tokens are never printed or logged.

use std::io::Write;
use std::time::Duration;

use super::client::OAuthTokenResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use super::flows::{FlowError, LoginOptions, save_login};
use super::outcome::{RefreshOutcome, classify_failure};
use super::store::{TokenRecord, TokenStore};
use crate::config::{Account, OAuthClient};

/// The grant type of the polling token request (RFC 8628 §3.4).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Polling interval when the server names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Shortest wait between polls, whatever the server says (it may say 0).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Added to the interval on `slow_down` (RFC 8628 §3.5), and the floor of the
/// interval after a transient failure.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Largest response body read from the device or token endpoint.
const MAX_BODY: usize = 64 * 1024;

/// What the user must see: where to go and which code to enter.
#[derive(Debug, Clone)]
pub struct DevicePrompt {
    pub verification_uri: Url,
    /// The same with the code filled in, when the server offers it.
    pub verification_uri_complete: Option<Url>,
    pub user_code: String,
    pub expires_in: Duration,
}

/// Where [`login_device_code`] shows the [`DevicePrompt`].
#[derive(Debug, Clone, Default)]
pub enum DeviceSink {
    /// Print it on stdout (the CLI).
    #[default]
    Stdout,
    /// Send it down a channel, print nothing (tests, embedding).
    Channel(tokio::sync::mpsc::UnboundedSender<DevicePrompt>),
}

#[derive(Deserialize)]
struct AuthorizationResponse {
    device_code: SecretString,
    user_code: String,
    /// Google says `verification_url`.
    #[serde(alias = "verification_url")]
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

/// One answer of an endpoint: status and (bounded) body.
async fn post_form(
    http: &reqwest::Client,
    url: &Url,
    oauth: &OAuthClient,
    mut form: Vec<(&'static str, String)>,
) -> Result<(u16, Vec<u8>), String> {
    form.push(("client_id", oauth.client_id.clone()));
    if let Some(s) = &oauth.client_secret {
        form.push(("client_secret", s.expose_secret().to_owned()));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let mut resp = http
        .post(url.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {}", super::client::error_chain(&e)))?;
    let status = resp.status().as_u16();
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        format!(
            "reading the response failed: {}",
            super::client::error_chain(&e)
        )
    })? {
        if out.len() + chunk.len() > MAX_BODY {
            return Err(format!(
                "HTTP {status}: response larger than {MAX_BODY} bytes"
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((status, out))
}

/// `HTTP 400: error: description` of an error body (never quoting anything else).
fn describe_error(status: u16, body: &[u8]) -> (Option<String>, String) {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => {
            let mut d = format!("HTTP {status}: {}", printable(&e.error));
            if let Some(desc) = &e.error_description {
                d.push_str(": ");
                d.push_str(&printable(desc));
            }
            (Some(e.error), d)
        }
        Err(_) => (None, format!("HTTP {status} without an OAuth error")),
    }
}

/// Server text made safe for a terminal: control characters dropped, bounded.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// A server-supplied URL we are willing to show: http(s) only.
fn show_url(s: &str) -> Option<Url> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
}

/// Runs the device-code login for `account` and saves the tokens.
///
/// Publishes the [`DevicePrompt`] to `opts.device_sink`, then polls until the user
/// approves, denies, the code expires, or `opts.timeout` passes.
pub async fn login_device_code(
    account: &Account,
    store: &TokenStore,
    http: &reqwest::Client,
    opts: LoginOptions,
) -> Result<TokenRecord, FlowError> {
    let name = &account.username;
    store.load(name)?;
    let oauth = &account.oauth;
    let Some(device_url) = &oauth.device_authorization_url else {
        return Err(FlowError::Config(format!(
            "account {name} has no `device_authorization_url`"
        )));
    };
    let started = Instant::now();
    let deadline = started + opts.timeout;

    let form = vec![("scope", oauth.scopes.join(" "))];
    let (status, body) =
        tokio::time::timeout_at(deadline, post_form(http, device_url, oauth, form))
            .await
            .map_err(|_| FlowError::NotApproved(opts.timeout))?
            .map_err(FlowError::DeviceAuthorization)?;
    if status != 200 {
        return Err(FlowError::DeviceAuthorization(
            describe_error(status, &body).1,
        ));
    }
    let auth: AuthorizationResponse = serde_json::from_slice(&body).map_err(|e| {
        FlowError::DeviceAuthorization(format!(
            "unparseable response (at line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let user_code = auth.user_code.trim();
    if user_code.is_empty()
        || user_code.len() > 64
        || !user_code.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(FlowError::DeviceAuthorization(
            "the server sent an unusable user_code".into(),
        ));
    }
    let verification_uri = show_url(&auth.verification_uri).ok_or_else(|| {
        FlowError::DeviceAuthorization("the server sent an unusable verification_uri".into())
    })?;
    let prompt = DevicePrompt {
        verification_uri,
        verification_uri_complete: auth.verification_uri_complete.as_deref().and_then(show_url),
        user_code: user_code.to_owned(),
        expires_in: Duration::from_secs(auth.expires_in),
    };
    // The server decides when the code expires; keep polling a little past it so its
    // `expired_token` is what ends the loop.
    let code_deadline = started + prompt.expires_in + Duration::from_secs(10);
    publish(&prompt, &opts, name);

    let mut interval = auth
        .interval
        .map_or(DEFAULT_INTERVAL, Duration::from_secs)
        .max(MIN_INTERVAL);
    let mut form = vec![
        ("grant_type", GRANT_TYPE.to_owned()),
        ("device_code", auth.device_code.expose_secret().to_owned()),
    ];
    if let Some(scopes) = &oauth.token_scopes {
        form.push(("scope", scopes.join(" ")));
    }
    loop {
        let wake = Instant::now() + interval;
        if wake >= deadline {
            tokio::time::sleep_until(deadline).await;
            return Err(FlowError::NotApproved(opts.timeout));
        }
        if wake >= code_deadline {
            return Err(FlowError::DeviceExpired);
        }
        tokio::time::sleep_until(wake).await;
        let answer = tokio::time::timeout_at(
            deadline,
            post_form(http, &oauth.token_url, oauth, form.clone()),
        )
        .await
        .map_err(|_| FlowError::NotApproved(opts.timeout))?;
        let (status, body) = match answer {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(
                    account = name.as_str(),
                    "device code poll failed, retrying: {e}"
                );
                interval = interval.max(SLOW_DOWN_STEP);
                continue;
            }
        };
        if status == 200 {
            let resp: OAuthTokenResponse = serde_json::from_slice(&body).map_err(|e| {
                FlowError::Token(format!(
                    "unparseable token response (at line {} column {})",
                    e.line(),
                    e.column()
                ))
            })?;
            let scopes = oauth.token_scopes.as_ref().unwrap_or(&oauth.scopes);
            return save_login(account, store, &resp, scopes);
        }
        let (code, detail) = describe_error(status, &body);
        match code.as_deref() {
            Some("authorization_pending") => {}
            Some("slow_down") => {
                interval += SLOW_DOWN_STEP;
                tracing::debug!(
                    account = name.as_str(),
                    "slow_down: polling every {}",
                    humantime::format_duration(interval)
                );
            }
            Some("expired_token") => return Err(FlowError::DeviceExpired),
            Some("access_denied") => {
                let description = serde_json::from_slice::<ErrorResponse>(&body)
                    .ok()
                    .and_then(|e| e.error_description)
                    .map(|d| printable(&d));
                return Err(FlowError::Denied { description });
            }
            code => match classify_failure(Some(status), code, detail) {
                RefreshOutcome::Transient(m) if code.is_none() => {
                    // 5xx, 429, an HTML error page: the server may come back.
                    tracing::warn!(
                        account = name.as_str(),
                        "device code poll failed, retrying: {m}"
                    );
                    interval = interval.max(SLOW_DOWN_STEP);
                }
                RefreshOutcome::Transient(m) | RefreshOutcome::NeedsConsent(m) => {
                    return Err(FlowError::Token(m));
                }
                RefreshOutcome::Refreshed(_) => return Err(FlowError::Token("unexpected".into())),
            },
        }
    }
}

fn publish(p: &DevicePrompt, opts: &LoginOptions, account: &str) {
    match &opts.device_sink {
        DeviceSink::Channel(tx) => {
            let _ = tx.send(p.clone());
        }
        DeviceSink::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "To log in account {account}, open on any device:\n\n    {}\n\nand enter the code:\n\n    {}\n",
                p.verification_uri, p.user_code
            );
            if let Some(c) = &p.verification_uri_complete {
                let _ = writeln!(out, "(or open {c} , which carries the code)\n");
            }
            let _ = writeln!(
                out,
                "The code expires in {}. Waiting for the approval ...",
                humantime::format_duration(p.expires_in)
            );
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_urls() {
        let (code, d) = describe_error(
            400,
            br#"{"error":"slow_down","error_description":"a\u001bb"}"#,
        );
        assert_eq!(code.as_deref(), Some("slow_down"));
        assert_eq!(d, "HTTP 400: slow_down: ab");
        let (code, d) = describe_error(502, b"<html>");
        assert!(code.is_none() && d.contains("502"));
        assert!(show_url("javascript:alert(1)").is_none());
        assert!(show_url("https://microsoft.com/devicelogin").is_some());
        let google: AuthorizationResponse = serde_json::from_str(
            r#"{"device_code":"d","user_code":"ABC-DEF","verification_url":"https://www.google.com/device","expires_in":1800,"interval":5}"#,
        )
        .unwrap();
        assert_eq!(google.verification_uri, "https://www.google.com/device");
    }
}
