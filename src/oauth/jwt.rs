//! The JWT bearer grant (RFC 7523) with a Google service-account key: the proxy signs
//! a JWT (RS256) for the mailbox user and trades it for an access token. There is no
//! refresh token; a new token is fetched before the old one expires.
//!
//! The key file is Google's service-account JSON (`client_email`, `private_key` as
//! PKCS#8 PEM, `token_uri`, optional `private_key_id`). The JWT carries `iss` =
//! `client_email`, `sub` = the mailbox (`upstream_username`), `scope` = the account's
//! scopes, `aud` = `token_uri` (else the account's `token_url`), and `iat`/`exp` one
//! hour apart. Signing uses `ring` (already in the tree through rustls).

use std::path::{Path, PathBuf};

use super::client::OAuthTokenResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::TokenResponse;
use oauth2::basic::BasicErrorResponse;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::outcome::{RefreshOutcome, classify_failure};
use super::store::TokenRecord;
use crate::config::Account;

/// `grant_type` of the JWT bearer grant.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime of a signed assertion (Google accepts at most one hour).
pub const ASSERTION_LIFETIME: u64 = 3600;
/// Largest key file read.
const MAX_KEY_FILE: u64 = 64 << 10;

/// A service-account key problem; never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("{}: cannot read the service account key: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a usable service account key: {reason}", path.display())]
    Bad { path: PathBuf, reason: String },
}

#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: SecretString,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// A loaded service-account key. `Debug` shows no key material.
pub struct ServiceAccountKey {
    pub client_email: String,
    pub token_uri: Option<String>,
    key_id: Option<String>,
    key: RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Reads and checks a key file.
    pub fn load(path: &Path) -> Result<Self, JwtError> {
        use std::io::Read;
        let read_err = |source| JwtError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut buf = zeroize::Zeroizing::new(Vec::new());
        std::fs::File::open(path)
            .map_err(read_err)?
            .take(MAX_KEY_FILE)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
        Self::from_json(&buf, path)
    }

    /// Parses key-file JSON; `path` names it in errors.
    pub fn from_json(json: &[u8], path: &Path) -> Result<Self, JwtError> {
        let bad = |reason: String| JwtError::Bad {
            path: path.to_path_buf(),
            reason,
        };
        let k: KeyFile =
            serde_json::from_slice(json).map_err(|e| bad(super::store::json_err_msg(&e)))?;
        if k.client_email.is_empty() {
            return Err(bad("empty client_email".into()));
        }
        let der = PrivatePkcs8KeyDer::from_pem_slice(k.private_key.expose_secret().as_bytes())
            .map_err(|_| bad("private_key is not a PKCS#8 PEM (\"BEGIN PRIVATE KEY\")".into()))?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| bad(format!("private_key is not a usable RSA key: {e}")))?;
        Ok(ServiceAccountKey {
            client_email: k.client_email,
            token_uri: k.token_uri.filter(|u| !u.is_empty()),
            key_id: k.private_key_id.filter(|i| !i.is_empty()),
            key,
        })
    }

    /// A signed assertion (compact JWS, RS256) for `sub`.
    pub fn assertion(&self, sub: &str, scopes: &[String], aud: &str, now: u64) -> String {
        let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
        if let Some(kid) = &self.key_id {
            header["kid"] = kid.as_str().into();
        }
        let claims = serde_json::json!({
            "iss": self.client_email,
            "sub": sub,
            "scope": scopes.join(" "),
            "aud": aud,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a valid key and buffer does not fail");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// The scopes the assertion asks for: `token_scopes`, else `scopes`.
fn scopes(account: &Account) -> &[String] {
    account
        .oauth
        .token_scopes
        .as_deref()
        .unwrap_or(&account.oauth.scopes)
}

/// Fetches a new access token for `account` (`flow = "jwt_bearer"`): signs an
/// assertion for its `upstream_username` and posts it to the token URL. A key that
/// cannot be read, or an `invalid_grant` (e.g. no domain-wide delegation for the
/// user), comes back as `NeedsConsent`: an admin must act, retrying will not help.
pub async fn fetch(account: &Account, http: &reqwest::Client) -> RefreshOutcome {
    let request = fetch_at(account, http, super::outcome::unix_now());
    match tokio::time::timeout(super::REFRESH_TIMEOUT, request).await {
        Ok(outcome) => outcome,
        Err(_) => RefreshOutcome::Transient(format!(
            "token request timed out after {}s",
            super::REFRESH_TIMEOUT.as_secs()
        )),
    }
}

/// `login` for a `jwt_bearer` account: fetch a token and store it (a check that the
/// key and the delegation work; the proxy fetches tokens by itself anyway).
pub async fn login_jwt_bearer(
    account: &Account,
    store: &super::store::TokenStore,
    http: &reqwest::Client,
) -> Result<TokenRecord, super::flows::FlowError> {
    store.load(&account.username)?;
    match fetch(account, http).await {
        RefreshOutcome::Refreshed(rec) => {
            store.save(&account.username, &rec)?;
            Ok(rec)
        }
        RefreshOutcome::Transient(m) | RefreshOutcome::NeedsConsent(m) => {
            Err(super::flows::FlowError::Token(m))
        }
    }
}

async fn fetch_at(account: &Account, http: &reqwest::Client, now: u64) -> RefreshOutcome {
    let Some(path) = &account.service_account_key else {
        return RefreshOutcome::NeedsConsent(
            "flow = \"jwt_bearer\" without service_account_key".into(),
        );
    };
    let path = path.clone();
    let key = match tokio::task::spawn_blocking(move || ServiceAccountKey::load(&path)).await {
        Ok(Ok(k)) => k,
        Ok(Err(e)) => return RefreshOutcome::NeedsConsent(e.to_string()),
        Err(e) => return RefreshOutcome::Transient(format!("key loading task: {e}")),
    };
    let token_url = account.oauth.token_url.as_str();
    let aud = key
        .token_uri
        .clone()
        .unwrap_or_else(|| token_url.to_string());
    let assertion =
        SecretString::from(key.assertion(&account.upstream_username, scopes(account), &aud, now));
    let form = [
        ("grant_type", GRANT_TYPE),
        ("assertion", assertion.expose_secret()),
    ];
    let resp = match http.post(token_url).form(&form).send().await {
        Ok(r) => r,
        Err(e) => {
            return RefreshOutcome::Transient(format!(
                "token request failed: {}",
                super::client::error_chain(&e)
            ));
        }
    };
    let status = resp.status().as_u16();
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return RefreshOutcome::Transient(format!("reading token response: {e}")),
    };
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<OAuthTokenResponse>(&body) {
            Ok(t) if t.access_token().secret().is_empty() => {
                RefreshOutcome::Transient("token endpoint returned an empty access token".into())
            }
            Ok(t) => {
                let mut rec = TokenRecord::from_login(&account.username, &t, scopes(account), now);
                rec.last_refresh = Some(now);
                RefreshOutcome::Refreshed(rec)
            }
            Err(e) => RefreshOutcome::Transient(format!(
                "unparseable token endpoint response (HTTP {status}: {})",
                super::store::json_err_msg(&e)
            )),
        };
    }
    match serde_json::from_slice::<BasicErrorResponse>(&body) {
        Ok(err) => {
            let code = err.error().as_ref();
            let mut detail = format!("token endpoint said HTTP {status}: {code}");
            if let Some(d) = err.error_description() {
                detail.push_str(": ");
                detail.push_str(d);
            }
            classify_failure(Some(status), Some(code), detail)
        }
        Err(_) => classify_failure(
            Some(status),
            None,
            format!("token endpoint answered HTTP {status}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_key_files_are_named_without_secrets() {
        let p = Path::new("key.json");
        let e = ServiceAccountKey::from_json(b"{}", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("key.json: not a usable"), "{e}");
        let json = br#"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#;
        let e = ServiceAccountKey::from_json(json, p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a usable RSA key") || e.contains("PKCS#8"),
            "{e}"
        );
        assert!(!e.contains("AAAA"), "{e}");
    }
}
