//! The oauth2 client for an account, and the one shared HTTP client.
//!
//! oauth2 5 tracks which endpoints are configured in the type (`EndpointSet` /
//! `EndpointNotSet`); ours always has the authorization and token endpoints.
//! The HTTP client never follows redirects (an open redirect on the token endpoint
//! must not be able to bounce the code or refresh token elsewhere).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, HttpClientError, HttpRequest, HttpResponse, StandardRevocableToken,
    StandardTokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::outcome::RefreshOutcome;
use crate::config::OAuthClient;

/// Token-response fields beyond RFC 6749 that the proxy reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraFields {
    /// Seconds the refresh token lives (Microsoft for SPAs, some others): a number,
    /// or a string of digits; anything else is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_in: Option<serde_json::Value>,
}

impl ExtraTokenFields for ExtraFields {}

impl ExtraFields {
    /// `refresh_token_expires_in` in seconds, when the server sent a usable one.
    pub fn refresh_expires_in(&self) -> Option<u64> {
        match self.refresh_token_expires_in.as_ref()? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// A token endpoint's success response.
pub type OAuthTokenResponse = StandardTokenResponse<ExtraFields, BasicTokenType>;

/// An oauth2 client with authorization and token endpoints set.
pub type ConfiguredClient = oauth2::Client<
    BasicErrorResponse,
    OAuthTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The error type of the HTTP client as oauth2 sees it.
pub type HttpError = HttpClientError<reqwest::Error>;

/// Connect timeout of the shared HTTP client.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout of the shared HTTP client.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the one HTTP client used for every token request: no redirects, bounded
/// time, rustls.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("oauth-mail-proxy/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Builds the oauth2 client for a configured OAuth client. A missing secret makes it
/// a public client. Credentials go in the request body (like pizauth), which Google,
/// Microsoft and RFC 6749 servers all accept.
pub fn oauth_client(cfg: &OAuthClient) -> ConfiguredClient {
    let client = oauth2::Client::new(ClientId::new(cfg.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(cfg.authorize_url.clone()))
        .set_token_uri(TokenUrl::from_url(cfg.token_url.clone()))
        .set_auth_type(AuthType::RequestBody);
    match &cfg.client_secret {
        Some(s) => client.set_client_secret(ClientSecret::new(s.expose_secret().to_owned())),
        None => client,
    }
}

/// Wraps the shared reqwest client for one token request and remembers what the
/// response said besides its body (oauth2 drops it, but classifying a failure needs
/// it): the HTTP status, a `Retry-After` in seconds, and whether it was HTML.
pub(crate) struct StatusRecorder<'a> {
    http: &'a reqwest::Client,
    status: AtomicU16,
    /// `Retry-After` in seconds (`u64::MAX`: none or not a number of seconds).
    retry_after: AtomicU64,
    html: AtomicBool,
}

impl<'a> StatusRecorder<'a> {
    pub(crate) fn new(http: &'a reqwest::Client) -> Self {
        StatusRecorder {
            http,
            status: AtomicU16::new(0),
            retry_after: AtomicU64::new(u64::MAX),
            html: AtomicBool::new(false),
        }
    }

    /// The status of the last response, if one was received.
    pub(crate) fn status(&self) -> Option<u16> {
        match self.status.load(Ordering::Relaxed) {
            0 => None,
            s => Some(s),
        }
    }

    /// The last response's `Retry-After`, when it was a number of seconds.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self.retry_after.load(Ordering::Relaxed) {
            u64::MAX => None,
            s => Some(Duration::from_secs(s)),
        }
    }

    /// The last response was an HTML page (`Content-Type: text/html`).
    pub(crate) fn html(&self) -> bool {
        self.html.load(Ordering::Relaxed)
    }

    /// `outcome` with a transient failure on an HTML page described as such (the page
    /// itself is not quoted: it is not ours to log).
    pub(crate) fn explain(&self, outcome: RefreshOutcome) -> RefreshOutcome {
        match outcome {
            RefreshOutcome::Transient(_) if self.html() => RefreshOutcome::Transient(format!(
                "token endpoint sent HTML instead of JSON (HTTP {})",
                self.status().unwrap_or(0)
            )),
            o => o,
        }
    }
}

/// `Retry-After` as delay-seconds (RFC 9110 §10.2.3). The HTTP-date form is not used
/// by token endpoints in practice and is ignored (the capped backoff applies).
pub(crate) fn parse_retry_after(value: &str) -> Option<u64> {
    let v = value.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().unwrap_or(u64::MAX - 1))
}

impl<'c> AsyncHttpClient<'c> for StatusRecorder<'_> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.http.call(request).await?;
            self.status
                .store(response.status().as_u16(), Ordering::Relaxed);
            let header = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &oauth2::http::HeaderValue| v.to_str().ok())
            };
            let retry_after = header(oauth2::http::header::RETRY_AFTER)
                .and_then(parse_retry_after)
                .unwrap_or(u64::MAX);
            self.retry_after.store(retry_after, Ordering::Relaxed);
            let html = header(oauth2::http::header::CONTENT_TYPE).is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/html")
            });
            self.html.store(html, Ordering::Relaxed);
            Ok(response)
        })
    }
}

/// `e: source: source ...`, for error messages (never contains request bodies).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.ends_with(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Provider;
    use oauth2::{CsrfToken, Scope};

    fn cfg(secret: Option<&str>) -> OAuthClient {
        OAuthClient {
            provider: Provider::Custom,
            client_id: "cid".into(),
            client_secret: secret.map(Into::into),
            authorize_url: "https://auth.example/authorize".parse().unwrap(),
            token_url: "https://auth.example/token".parse().unwrap(),
            scopes: vec!["mail".into()],
            flow: crate::config::Flow::AuthorizationCode,
            device_authorization_url: None,
            refresh_url: "https://auth.example/token".parse().unwrap(),
            token_scopes: None,
            login_hint: None,
            prompt: None,
            redirect_uri: None,
            revocation_url: None,
        }
    }

    #[test]
    fn builds_public_and_confidential_clients() {
        for secret in [None, Some("s3cret")] {
            let c = oauth_client(&cfg(secret));
            assert_eq!(c.token_uri().as_str(), "https://auth.example/token");
            let (url, _) = c
                .authorize_url(|| CsrfToken::new("st".into()))
                .add_scope(Scope::new("mail".into()))
                .url();
            let url = url.to_string();
            assert!(url.starts_with("https://auth.example/authorize?"), "{url}");
            assert!(
                url.contains("client_id=cid") && url.contains("state=st"),
                "{url}"
            );
            assert!(!url.contains("s3cret"));
        }
        assert!(http_client().is_ok());
    }

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(parse_retry_after("30"), Some(30));
        assert_eq!(parse_retry_after(" 0 "), Some(0));
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(u64::MAX - 1)
        );
        for v in ["", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(v), None, "{v:?}");
        }
    }
}
