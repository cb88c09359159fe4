//! The device authorization grant (RFC 8628): `POST /device` hands out a device code
//! and a user code, `GET /device/verify` approves a user code (as the default user,
//! so a human can try it in a browser), and the token endpoint's
//! `urn:ietf:params:oauth:grant-type:device_code` grant answers
//! `authorization_pending`, `slow_down`, `expired_token` or `access_denied` until the
//! code is approved. Tests approve or deny codes through [`super::AuthServer`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::Shared;
use super::error::{OAuthError, no_store};
use super::handlers::DEFAULT_SCOPE;
use super::params::{Params, authenticate_client, is_form};

/// The grant type of the token request (RFC 8628 §3.4).
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Default lifetime of a device code.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Default polling interval (RFC 8628 §3.2's default).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Letters of user codes: no vowels (no words), no look-alikes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Pending,
    Approved(String),
    Denied,
}

#[derive(Debug)]
struct Device {
    user_code: String,
    client_id: String,
    scope: String,
    expires: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    status: Status,
}

/// Pending device authorizations, keyed by the SHA-256 of the device code.
#[derive(Debug)]
pub(crate) struct Devices {
    interval: Duration,
    lifetime: Duration,
    forced_slow_downs: u32,
    polls: u64,
    slow_downs: u64,
    pending: HashMap<[u8; 32], Device>,
}

impl Default for Devices {
    fn default() -> Self {
        Devices {
            interval: DEFAULT_INTERVAL,
            lifetime: DEFAULT_LIFETIME,
            forced_slow_downs: 0,
            polls: 0,
            slow_downs: 0,
            pending: HashMap::new(),
        }
    }
}

fn key(device_code: &str) -> [u8; 32] {
    Sha256::digest(device_code.as_bytes()).into()
}

/// `BCDF-GHJK`: 8 letters, ~34 bits.
fn new_user_code() -> String {
    let bytes: [u8; 8] = crate::secret::random_bytes();
    let mut s = String::with_capacity(9);
    for (i, b) in bytes.iter().enumerate() {
        if i == 4 {
            s.push('-');
        }
        s.push(USER_CODE_ALPHABET[*b as usize % USER_CODE_ALPHABET.len()] as char);
    }
    s
}

/// User codes compare without case and dashes (RFC 8628 §6.1).
fn normalize(user_code: &str) -> String {
    user_code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl Devices {
    pub(crate) fn set_interval(&mut self, d: Duration) {
        self.interval = d;
    }

    pub(crate) fn set_lifetime(&mut self, d: Duration) {
        self.lifetime = d;
    }

    pub(crate) fn force_slow_downs(&mut self, n: u32) {
        self.forced_slow_downs = n;
    }

    /// (token requests for device codes, of which answered `slow_down`).
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.polls, self.slow_downs)
    }

    fn purge(&mut self) {
        let now = Instant::now();
        // Keep expired codes a while so their polls get `expired_token`.
        self.pending
            .retain(|_, d| d.expires + Duration::from_secs(600) > now);
    }

    /// Returns (device_code, user_code) for a new authorization.
    fn start(&mut self, client_id: &str, scope: &str) -> (String, String) {
        self.purge();
        let device_code = crate::secret::random_token(32);
        let user_code = new_user_code();
        self.pending.insert(
            key(&device_code),
            Device {
                user_code: user_code.clone(),
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                expires: Instant::now() + self.lifetime,
                interval: self.interval,
                last_poll: None,
                status: Status::Pending,
            },
        );
        (device_code, user_code)
    }

    /// Approves (`Some(user)`) or denies (`None`) a pending, unexpired user code.
    pub(crate) fn decide(&mut self, user_code: &str, user: Option<&str>) -> bool {
        let wanted = normalize(user_code);
        let now = Instant::now();
        let found = self.pending.values_mut().find(|d| {
            d.status == Status::Pending && d.expires > now && normalize(&d.user_code) == wanted
        });
        match found {
            Some(d) => {
                d.status = user.map_or(Status::Denied, |u| Status::Approved(u.to_owned()));
                true
            }
            None => false,
        }
    }

    /// One poll of the token endpoint: `(user, scope)` once approved.
    fn poll(&mut self, device_code: &str, client_id: &str) -> Result<(String, String), OAuthError> {
        let k = key(device_code);
        let now = Instant::now();
        let d = self
            .pending
            .get_mut(&k)
            .ok_or(OAuthError::InvalidGrant("unknown device code"))?;
        if d.client_id != client_id {
            return Err(OAuthError::InvalidGrant(
                "device code was issued to another client",
            ));
        }
        self.polls += 1;
        if d.expires <= now {
            return Err(OAuthError::ExpiredToken);
        }
        let too_fast = d.last_poll.is_some_and(|l| now < l + d.interval);
        d.last_poll = Some(now);
        if self.forced_slow_downs > 0 || too_fast {
            self.forced_slow_downs = self.forced_slow_downs.saturating_sub(1);
            self.slow_downs += 1;
            d.interval += Duration::from_secs(5);
            return Err(OAuthError::SlowDown);
        }
        match d.status.clone() {
            Status::Pending => Err(OAuthError::AuthorizationPending),
            Status::Denied => {
                self.pending.remove(&k);
                Err(OAuthError::AccessDenied)
            }
            Status::Approved(user) => {
                let d = self.pending.remove(&k).expect("present above");
                Ok((user, d.scope))
            }
        }
    }
}

/// The token-endpoint grant; the client is already authenticated.
pub(crate) fn token_grant(
    s: &Shared,
    p: &Params,
    client_id: &str,
) -> Result<(String, String), OAuthError> {
    let code = p.require("device_code", "missing device_code")?;
    s.devices().poll(code, client_id)
}

/// `http://HOST` of this server as the request addressed it.
fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// POST /device (RFC 8628 §3.1–3.2).
pub(crate) async fn authorize(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        if !is_form(&headers) {
            return Err(OAuthError::InvalidRequest(
                "body must be application/x-www-form-urlencoded",
            ));
        }
        let p = Params::parse(&body)?;
        authenticate_client(&headers, &p, &s.cfg.client_id, &s.cfg.client_secret)?;
        let scope = p.get("scope").unwrap_or(DEFAULT_SCOPE).to_owned();
        let mut devices = s.devices();
        let (device_code, user_code) = devices.start(&s.cfg.client_id, &scope);
        Ok((
            device_code,
            user_code,
            devices.lifetime.as_secs(),
            devices.interval.as_secs(),
        ))
    })();
    match result {
        Ok((device_code, user_code, expires_in, interval)) => {
            let verify = format!("{}/device/verify", base(&headers));
            let complete = format!("{verify}?user_code={user_code}");
            tracing::info!("device authorization started");
            let body = serde_json::json!({
                "device_code": device_code,
                "user_code": user_code,
                "verification_uri": verify,
                "verification_uri_complete": complete,
                "expires_in": expires_in,
                "interval": interval,
            });
            (StatusCode::OK, no_store(), Json(body)).into_response()
        }
        Err(e) => {
            tracing::info!(error = %e, "device authorization rejected");
            e.into_response()
        }
    }
}

/// GET /device/verify[?user_code=..]: a form, or the approval as the default user.
pub(crate) async fn verify(State(s): State<Arc<Shared>>, RawQuery(q): RawQuery) -> Response {
    let p = Params::parse(q.unwrap_or_default().as_bytes()).unwrap_or_default();
    let page = |status: StatusCode, text: &str| {
        let body = format!(
            "<!doctype html><title>Device login</title><h1>Device login</h1><p>{text}</p>\
             <form method=\"get\"><input name=\"user_code\" placeholder=\"ABCD-EFGH\">\
             <button>Approve</button></form>\n"
        );
        (status, Html(body)).into_response()
    };
    let Some(code) = p.get("user_code") else {
        return page(StatusCode::OK, "Enter the code shown on your device.");
    };
    if s.deny.load(std::sync::atomic::Ordering::SeqCst) {
        s.devices().decide(code, None);
        return page(StatusCode::OK, "Access denied (deny switch set).");
    }
    let user = s.cfg.default_user.clone();
    if s.devices().decide(code, Some(&user)) {
        tracing::info!(user = %user, "device authorization approved");
        page(StatusCode::OK, "Approved. You can return to your device.")
    } else {
        page(StatusCode::NOT_FOUND, "Unknown or expired code.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes() {
        let c = new_user_code();
        assert_eq!(c.len(), 9);
        assert_eq!(&c[4..5], "-");
        assert_eq!(normalize("bcdf-ghjk"), "BCDFGHJK");
    }

    #[test]
    fn poll_states() {
        let mut d = Devices::default();
        d.set_interval(Duration::ZERO);
        let (dc, uc) = d.start("c", "mail");
        assert_eq!(d.poll(&dc, "c"), Err(OAuthError::AuthorizationPending));
        assert!(d.poll(&dc, "other").is_err());
        d.force_slow_downs(1);
        assert_eq!(d.poll(&dc, "c"), Err(OAuthError::SlowDown));
        // The interval grew by 5 s: polling at once is too fast.
        assert_eq!(d.poll(&dc, "c"), Err(OAuthError::SlowDown));
        assert!(d.decide(&uc.to_lowercase(), Some("u")));
        assert!(!d.decide(&uc, Some("u")), "only pending codes are decided");
        d.pending.values_mut().for_each(|x| x.last_poll = None);
        assert_eq!(d.poll(&dc, "c"), Ok(("u".into(), "mail".into())));
        assert!(d.poll(&dc, "c").is_err(), "single use");

        let (dc, uc) = d.start("c", "mail");
        assert!(d.decide(&uc, None));
        assert_eq!(d.poll(&dc, "c"), Err(OAuthError::AccessDenied));

        d.set_lifetime(Duration::ZERO);
        let (dc, _) = d.start("c", "mail");
        assert_eq!(d.poll(&dc, "c"), Err(OAuthError::ExpiredToken));
        assert_eq!(d.counts().1, 2);
    }
}
