//! OAuth 2.0 error responses (RFC 6749 §5.2), safe to display: no token values.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answered by the token or introspection endpoint.
///
/// Every variant's `Display` is safe to log: it carries a fixed description, never
/// client-supplied values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// A required parameter is missing, repeated or malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// Client authentication failed (unknown client, wrong secret, no credentials).
    #[error("invalid_client")]
    InvalidClient,
    /// The code, refresh token or PKCE verifier is invalid, expired, revoked or reused.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// The grant type is not one this server knows.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// The requested scope exceeds the scope originally granted.
    #[error("invalid_scope")]
    InvalidScope,
    /// Device grant (RFC 8628 §3.5): the user has not decided yet.
    #[error("authorization_pending")]
    AuthorizationPending,
    /// Device grant: polling too fast; the interval grew by 5 seconds.
    #[error("slow_down")]
    SlowDown,
    /// Device grant: the device code expired.
    #[error("expired_token")]
    ExpiredToken,
    /// Device grant: the user denied the request.
    #[error("access_denied")]
    AccessDenied,
}

impl OAuthError {
    /// The `error` code of RFC 6749 §5.2.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::AccessDenied => "access_denied",
        }
    }

    /// The HTTP status: 401 for client authentication failures, 400 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn description(&self) -> &'static str {
        match self {
            Self::InvalidRequest(d) | Self::InvalidGrant(d) => d,
            Self::InvalidClient => "client authentication failed",
            Self::UnsupportedGrantType => "grant type not supported",
            Self::InvalidScope => "requested scope exceeds the granted scope",
            Self::AuthorizationPending => "the user has not yet approved the request",
            Self::SlowDown => "polling too fast; wait 5 more seconds between requests",
            Self::ExpiredToken => "the device code has expired",
            Self::AccessDenied => "the user denied the request",
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.code(),
            "error_description": self.description(),
        });
        let mut resp = (self.status(), no_store(), Json(body)).into_response();
        if self == Self::InvalidClient {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oauth-mail-proxy test authserver\""),
            );
        }
        resp
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache`, required on token responses
/// (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}
