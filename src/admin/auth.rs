//! Who may use the admin listener: the admin password (an Argon2id hash), given as
//! HTTP Basic (any user name), as `Authorization: Bearer <password>`, or once on the
//! login form in exchange for a session cookie.
//!
//! Argon2 runs on the blocking pool, one check at a time; a successful check is
//! remembered for a few minutes (keyed by an HMAC, never the password), so a scraper
//! sending Basic credentials every 15 s does not pay a hash each time. Failures wait
//! out the failure throttle (per source address) before the answer.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{HeaderMap, header};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::sessions::{SESSION_TTL, Sessions};
use crate::throttle::Throttle;
use crate::verdict_cache::VerdictCache;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "omp_admin";
/// Name of the login form's anti-CSRF cookie (double submit: cookie and field agree).
pub const LOGIN_COOKIE: &str = "omp_login";
/// The user name the throttle counts admin failures under.
const THROTTLE_USER: &str = "\0admin";

pub(crate) struct Auth {
    hash: String,
    throttle: Throttle,
    hashing: Semaphore,
    verdicts: VerdictCache<()>,
    pub sessions: Sessions,
}

impl Auth {
    pub fn new(hash: String, failure_delay: Duration, failure_max_delay: Duration) -> Self {
        Auth {
            hash,
            throttle: Throttle::new(failure_delay, failure_max_delay),
            hashing: Semaphore::new(1),
            verdicts: VerdictCache::new(Duration::from_secs(300), 64),
            sessions: Sessions::new(SESSION_TTL),
        }
    }

    /// True if `password` is the admin password. A wrong one returns only after the
    /// throttle's delay for `source`.
    pub async fn check(&self, source: IpAddr, password: SecretString) -> bool {
        if self.verdicts.get("", password.expose_secret()).is_some() {
            return true;
        }
        let ok = match self.hashing.acquire().await {
            Ok(_permit) => {
                let hash = self.hash.clone();
                let pw = password.clone();
                tokio::task::spawn_blocking(move || crate::accounts::verify(&hash, &pw))
                    .await
                    .unwrap_or(false)
            }
            Err(_) => false,
        };
        if ok {
            self.verdicts.insert("", password.expose_secret(), ());
            self.throttle.succeeded(THROTTLE_USER);
        } else {
            let delay = self
                .throttle
                .failed(source, THROTTLE_USER, tokio::time::Instant::now());
            tracing::warn!(%source, delay_ms = delay.as_millis() as u64, "admin: wrong password");
            tokio::time::sleep(delay).await;
        }
        ok
    }
}

/// The password of an `Authorization: Basic` (any user name) or `Bearer` header.
/// `None` without such a header; an empty password when it is malformed.
pub fn header_password(headers: &HeaderMap) -> Option<SecretString> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(SecretString::from(rest.to_owned()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let password = decoded.split_once(':').map_or("", |(_, p)| p);
    Some(SecretString::from(password.to_owned()))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, whole site, for `max_age`
/// seconds (0 deletes it).
pub fn set_cookie(name: &str, value: &str, max_age: u64) -> String {
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(name, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn basic_and_bearer() {
        let b64 = base64::engine::general_purpose::STANDARD.encode("anyone:pa:ss");
        let h = headers(header::AUTHORIZATION, &format!("Basic {b64}"));
        assert_eq!(header_password(&h).unwrap().expose_secret(), "pa:ss");
        let h = headers(header::AUTHORIZATION, "Bearer tok en");
        assert_eq!(header_password(&h).unwrap().expose_secret(), "tok en");
        let h = headers(header::AUTHORIZATION, "Basic !!!");
        assert_eq!(header_password(&h).unwrap().expose_secret(), "");
        assert!(header_password(&headers(header::AUTHORIZATION, "Digest x")).is_none());
        assert!(header_password(&HeaderMap::new()).is_none());
    }

    #[test]
    fn cookies() {
        let mut h = headers(header::COOKIE, "a=1; omp_admin=x.y");
        h.append(header::COOKIE, HeaderValue::from_static("omp_login=z"));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("x.y"));
        assert_eq!(cookie(&h, LOGIN_COOKIE).as_deref(), Some("z"));
        assert_eq!(cookie(&h, "b"), None);
    }

    #[tokio::test]
    async fn checks_the_password_and_delays_failures() {
        let pw = crate::secret::random_token(12);
        let hash = crate::accounts::hash_password(&SecretString::from(pw.clone()));
        let auth = Auth::new(hash, Duration::from_millis(50), Duration::from_millis(200));
        let src = IpAddr::from([127, 0, 0, 1]);
        assert!(auth.check(src, SecretString::from(pw.clone())).await);
        // Cached now: still true.
        assert!(auth.check(src, SecretString::from(pw)).await);
        let started = tokio::time::Instant::now();
        assert!(
            !auth
                .check(src, SecretString::from("wrong".to_owned()))
                .await
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
