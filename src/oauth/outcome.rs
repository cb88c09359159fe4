//! Classifying a token-endpoint answer, as pizauth does: either we got tokens, or the
//! failure is transient (retry later; the user need not act), or the grant is dead and
//! the user must log in again.
//!
//! | answer                                                    | outcome        |
//! |-----------------------------------------------------------|----------------|
//! | 200 with a token                                          | `Refreshed`    |
//! | network error, timeout, no/odd/unparseable response      | `Transient`    |
//! | HTTP 408, 429, 5xx (whatever the body says)               | `Transient`    |
//! | `invalid_grant` (any other status)                        | `NeedsConsent` |
//! | 400/401 with `invalid_client` or `unauthorized_client`    | `NeedsConsent` |
//! | any other error (`invalid_request`, `invalid_scope`, ...) | `Transient`    |
//!
//! Messages never contain a token: response bodies are not quoted, only the server's
//! `error` / `error_description` and the HTTP status.

use std::time::{SystemTime, UNIX_EPOCH};

use super::client::OAuthTokenResponse;
use oauth2::basic::BasicErrorResponse;
use oauth2::{RequestTokenError, TokenResponse};
use secrecy::SecretString;

use super::client::{HttpError, error_chain};
use super::store::TokenRecord;

/// What a refresh attempt came to.
#[derive(Debug)]
pub enum RefreshOutcome {
    Refreshed(TokenRecord),
    /// Retry later; the message says why (safe to log).
    Transient(String),
    /// The refresh token (or client) was rejected; the message says why.
    NeedsConsent(String),
}

/// The error type of an oauth2 token request made through our HTTP client.
pub type TokenRequestError = RequestTokenError<HttpError, BasicErrorResponse>;

/// Current time in whole unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Classifies a failure from its HTTP status (if a response arrived) and the OAuth
/// `error` code (if the body had one). `detail` becomes the message.
pub fn classify_failure(
    status: Option<u16>,
    error_code: Option<&str>,
    detail: String,
) -> RefreshOutcome {
    match (status, error_code) {
        (Some(408 | 429 | 500..=599), _) => RefreshOutcome::Transient(detail),
        (_, Some("invalid_grant")) => RefreshOutcome::NeedsConsent(detail),
        (Some(400 | 401), Some("invalid_client" | "unauthorized_client")) => {
            RefreshOutcome::NeedsConsent(detail)
        }
        _ => RefreshOutcome::Transient(detail),
    }
}

/// Describes and classifies an oauth2 request error.
pub fn classify_error(status: Option<u16>, err: &TokenRequestError) -> RefreshOutcome {
    let http = status.map(|s| format!("HTTP {s}: ")).unwrap_or_default();
    match err {
        RequestTokenError::ServerResponse(resp) => {
            let code = resp.error().as_ref();
            let mut detail = format!("token endpoint said {http}{code}");
            if let Some(d) = resp.error_description() {
                detail.push_str(": ");
                detail.push_str(d);
            }
            classify_failure(status, Some(code), detail)
        }
        RequestTokenError::Request(e) => classify_failure(
            status,
            None,
            format!("token request failed: {}", error_chain(e)),
        ),
        // Only the JSON path (or a missing field's name): serde's other messages may
        // quote (secret) values.
        RequestTokenError::Parse(e, _body) => {
            let inner = e.inner().to_string();
            let detail = match status {
                Some(s) if s != 200 => {
                    format!("token endpoint said HTTP {s} without an OAuth error in the body")
                }
                _ if inner.starts_with("missing field `") => format!(
                    "token endpoint answered {}JSON without a required field ({})",
                    status
                        .map(|s| format!("HTTP {s} with "))
                        .unwrap_or_default(),
                    inner.split(" at line").next().unwrap_or(&inner)
                ),
                _ => format!(
                    "unparseable token endpoint response ({http}at `{}`)",
                    e.path()
                ),
            };
            classify_failure(status, None, detail)
        }
        RequestTokenError::Other(m) => {
            classify_failure(status, None, format!("token endpoint: {http}{m}"))
        }
    }
}

/// Classifies the result of a refresh request for `previous`.
pub fn classify_refresh(
    status: Option<u16>,
    result: Result<OAuthTokenResponse, TokenRequestError>,
    previous: &TokenRecord,
    now: u64,
) -> RefreshOutcome {
    match result {
        Ok(resp) if resp.access_token().secret().is_empty() => {
            RefreshOutcome::Transient("token endpoint returned an empty access token".into())
        }
        Ok(resp) => RefreshOutcome::Refreshed(previous.refreshed(&resp, now)),
        Err(e) => classify_error(status, &e),
    }
}

fn expiry(resp: &OAuthTokenResponse, now: u64) -> Option<u64> {
    resp.expires_in().map(|d| now.saturating_add(d.as_secs()))
}

fn refresh_expiry(resp: &OAuthTokenResponse, now: u64) -> Option<u64> {
    resp.extra_fields()
        .refresh_expires_in()
        .map(|s| now.saturating_add(s))
}

fn scopes_of(resp: &OAuthTokenResponse) -> Option<Vec<String>> {
    resp.scopes()
        .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect())
}

impl TokenRecord {
    /// A record from the token response of an interactive login.
    pub fn from_login(
        account: &str,
        resp: &OAuthTokenResponse,
        requested_scopes: &[String],
        now: u64,
    ) -> Self {
        TokenRecord {
            account: account.to_owned(),
            access_token: SecretString::from(resp.access_token().secret().as_str()),
            refresh_token: resp
                .refresh_token()
                .map(|t| SecretString::from(t.secret().as_str())),
            expires_at: expiry(resp, now),
            scopes: scopes_of(resp).unwrap_or_else(|| requested_scopes.to_vec()),
            obtained_at: now,
            last_refresh: None,
            needs_login: None,
            refresh_expires_at: refresh_expiry(resp, now),
        }
    }

    /// This record updated by a refresh response. Keeps the old refresh token unless
    /// the server rotated it, and the old scopes unless the server named them.
    pub fn refreshed(&self, resp: &OAuthTokenResponse, now: u64) -> Self {
        TokenRecord {
            account: self.account.clone(),
            access_token: SecretString::from(resp.access_token().secret().as_str()),
            refresh_token: match resp.refresh_token() {
                Some(t) => Some(SecretString::from(t.secret().as_str())),
                None => self.refresh_token.clone(),
            },
            expires_at: expiry(resp, now),
            scopes: scopes_of(resp).unwrap_or_else(|| self.scopes.clone()),
            obtained_at: self.obtained_at,
            last_refresh: Some(now),
            needs_login: None,
            // A new expiry when the server gave one; the old one while the refresh
            // token is the same; unknown for a rotated token without one.
            refresh_expires_at: refresh_expiry(resp, now).or(match resp.refresh_token() {
                Some(_) => None,
                None => self.refresh_expires_at,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oauth2::basic::BasicTokenType;
    use oauth2::{AccessToken, RefreshToken, Scope};
    use secrecy::ExposeSecret;

    fn kind(o: &RefreshOutcome) -> &'static str {
        match o {
            RefreshOutcome::Refreshed(_) => "refreshed",
            RefreshOutcome::Transient(_) => "transient",
            RefreshOutcome::NeedsConsent(_) => "consent",
        }
    }

    #[test]
    fn failure_table() {
        let cases: &[(Option<u16>, Option<&str>, &str)] = &[
            (None, None, "transient"),
            (Some(400), Some("invalid_grant"), "consent"),
            (Some(401), Some("invalid_grant"), "consent"),
            (Some(400), Some("invalid_client"), "consent"),
            (Some(401), Some("invalid_client"), "consent"),
            (Some(401), Some("unauthorized_client"), "consent"),
            (Some(403), Some("invalid_client"), "transient"),
            (Some(400), Some("invalid_request"), "transient"),
            (Some(400), Some("invalid_scope"), "transient"),
            (Some(400), None, "transient"),
            (Some(401), None, "transient"),
            (Some(408), None, "transient"),
            (Some(429), Some("invalid_grant"), "transient"),
            (Some(500), Some("invalid_grant"), "transient"),
            (Some(502), None, "transient"),
            (Some(503), Some("temporarily_unavailable"), "transient"),
            (Some(599), None, "transient"),
        ];
        for (status, code, want) in cases {
            let got = classify_failure(*status, *code, "d".into());
            assert_eq!(kind(&got), *want, "{status:?} {code:?}");
        }
    }

    /// Runs a refresh through oauth2 against a canned HTTP response.
    async fn canned(status: u16, body: &str) -> RefreshOutcome {
        let cfg = crate::config::OAuthClient {
            provider: crate::config::Provider::Custom,
            client_id: "cid".into(),
            client_secret: None,
            authorize_url: "https://a.example/auth".parse().unwrap(),
            token_url: "https://a.example/token".parse().unwrap(),
            scopes: vec![],
            flow: crate::config::Flow::AuthorizationCode,
            device_authorization_url: None,
            refresh_url: "https://a.example/token".parse().unwrap(),
            token_scopes: None,
            login_hint: None,
            prompt: None,
            redirect_uri: None,
            revocation_url: None,
        };
        let body = body.as_bytes().to_vec();
        let http = move |_req: oauth2::HttpRequest| {
            let resp = oauth2::http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(body.clone())
                .unwrap();
            async move { Ok::<_, HttpError>(resp) }
        };
        let prev = TokenRecord::from_login("a", &response("old", Some("r"), None), &[], 0);
        let result = super::super::client::oauth_client(&cfg)
            .exchange_refresh_token(&RefreshToken::new("r".into()))
            .request_async(&http)
            .await;
        classify_refresh(Some(status), result, &prev, 10)
    }

    #[tokio::test]
    async fn oauth2_errors() {
        let o = canned(
            400,
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        )
        .await;
        let RefreshOutcome::NeedsConsent(m) = o else {
            panic!("{o:?}")
        };
        assert_eq!(
            m,
            "token endpoint said HTTP 400: invalid_grant: Token has been expired or revoked."
        );
        assert_eq!(
            kind(&canned(503, r#"{"error":"invalid_grant"}"#).await),
            "transient"
        );
        assert_eq!(
            kind(&canned(401, r#"{"error":"invalid_client"}"#).await),
            "consent"
        );
        assert_eq!(kind(&canned(401, "").await), "transient");
        assert_eq!(
            kind(&canned(502, "<html>bad gateway</html>").await),
            "transient"
        );
        // Parse errors never quote the body.
        let o = canned(
            200,
            r#"{"access_token": ["secret-ish"], "token_type": "bearer"}"#,
        )
        .await;
        let RefreshOutcome::Transient(m) = o else {
            panic!("{o:?}")
        };
        assert!(
            m.contains("unparseable") && !m.contains("secret-ish"),
            "{m}"
        );
        let o = canned(
            200,
            r#"{"access_token":"new","token_type":"bearer","expires_in":60}"#,
        )
        .await;
        let RefreshOutcome::Refreshed(r) = o else {
            panic!("{o:?}")
        };
        assert_eq!(r.access_token.expose_secret(), "new");

        // Named faults: no token field, a 5xx without an OAuth error.
        let o = canned(200, r#"{"token_type":"Bearer","expires_in":60}"#).await;
        let RefreshOutcome::Transient(m) = o else {
            panic!("{o:?}")
        };
        assert!(m.contains("missing field `access_token`"), "{m}");
        let o = canned(503, "Service Unavailable").await;
        let RefreshOutcome::Transient(m) = o else {
            panic!("{o:?}")
        };
        assert!(
            m.contains("HTTP 503") && !m.contains("Service Unavailable"),
            "{m}"
        );
        assert_eq!(r.expires_at, Some(70));
    }

    fn response(access: &str, refresh: Option<&str>, secs: Option<u64>) -> OAuthTokenResponse {
        let mut r = OAuthTokenResponse::new(
            AccessToken::new(access.into()),
            BasicTokenType::Bearer,
            Default::default(),
        );
        r.set_refresh_token(refresh.map(|t| RefreshToken::new(t.into())));
        r.set_expires_in(secs.map(std::time::Duration::from_secs).as_ref());
        r
    }

    #[test]
    fn refresh_token_expiry() {
        let parse = |json: &str| serde_json::from_str::<OAuthTokenResponse>(json).unwrap();
        let base = r#""access_token":"a","token_type":"Bearer""#;
        let with = |v: &str| {
            parse(&format!(
                "{{{base},\"refresh_token\":\"r\",\"refresh_token_expires_in\":{v}}}"
            ))
        };
        // A number or a numeric string (some servers quote it); anything else ignored.
        let rec = TokenRecord::from_login("a", &with("86400"), &[], 1000);
        assert_eq!(rec.refresh_expires_at, Some(87400));
        let rec = TokenRecord::from_login("a", &with("\"600\""), &[], 1000);
        assert_eq!(rec.refresh_expires_at, Some(1600));
        let rec = TokenRecord::from_login("a", &with("null"), &[], 1000);
        assert_eq!(rec.refresh_expires_at, None);
        let rec = TokenRecord::from_login("a", &with("\"soon\""), &[], 1000);
        assert_eq!(rec.refresh_expires_at, None);

        // A refresh without it keeps the expiry of the same refresh token, forgets it
        // for a rotated one, and takes a new one when given.
        let prev = TokenRecord::from_login("a", &with("86400"), &[], 1000);
        let same = prev.refreshed(&parse(&format!("{{{base}}}")), 2000);
        assert_eq!(same.refresh_expires_at, Some(87400));
        let rotated = prev.refreshed(
            &parse(&format!("{{{base},\"refresh_token\":\"r2\"}}")),
            2000,
        );
        assert_eq!(rotated.refresh_expires_at, None);
        let renewed = prev.refreshed(&with("100"), 2000);
        assert_eq!(renewed.refresh_expires_at, Some(2100));
    }

    #[test]
    fn records_from_responses() {
        let resp = response("a1", Some("r1"), Some(3600));
        let rec = TokenRecord::from_login("alice", &resp, &["mail".into()], 1000);
        assert_eq!(rec.expires_at, Some(4600));
        assert_eq!(rec.scopes, vec!["mail"]);
        assert_eq!(rec.obtained_at, 1000);
        assert_eq!(rec.refresh_token.as_ref().unwrap().expose_secret(), "r1");

        // No rotation: keep the old refresh token.
        let mut prev = rec.clone();
        prev.needs_login = Some("x".into());
        let o = classify_refresh(Some(200), Ok(response("a2", None, Some(60))), &prev, 2000);
        let RefreshOutcome::Refreshed(r2) = o else {
            panic!("{o:?}")
        };
        assert_eq!(r2.access_token.expose_secret(), "a2");
        assert_eq!(r2.refresh_token.as_ref().unwrap().expose_secret(), "r1");
        assert_eq!(
            (r2.expires_at, r2.last_refresh, r2.obtained_at),
            (Some(2060), Some(2000), 1000)
        );
        assert!(r2.needs_login.is_none());

        // Rotation: take the new one; scopes from the server when given.
        let mut resp3 = response("a3", Some("r2"), None);
        resp3.set_scopes(Some(vec![Scope::new("other".into())]));
        let RefreshOutcome::Refreshed(r3) = classify_refresh(Some(200), Ok(resp3), &r2, 3000)
        else {
            panic!()
        };
        assert_eq!(r3.refresh_token.unwrap().expose_secret(), "r2");
        assert_eq!(r3.expires_at, None);
        assert_eq!(r3.scopes, vec!["other"]);

        let empty = classify_refresh(Some(200), Ok(response("", None, None)), &r2, 1);
        assert_eq!(kind(&empty), "transient");
    }
}
