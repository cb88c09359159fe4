//! Fault injection for the token endpoint: tests make `POST /token` fail the way real
//! providers and the networks in front of them do, to check that the proxy keeps its
//! refresh token and tells clients to try again later.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// How `POST /token` misbehaves while set with
/// [`AuthServer::set_token_fault`](super::AuthServer::set_token_fault). Every fault
/// answers before the grant is looked at: no code, refresh token or device code is
/// used up, so clearing the fault lets the same grant work again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFault {
    /// This HTTP status (meant for 5xx) with a short plain-text body.
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: <retry_after>` (seconds).
    TooManyRequests { retry_after: u64 },
    /// `200 OK` with an HTML page, as a captive portal or a misrouted proxy sends.
    Html,
    /// `200 OK` with a JSON object that has no `access_token`.
    NoAccessToken,
    /// Waits this long, then answers normally.
    Slow(Duration),
    /// Never answers (until the server shuts down).
    Hang,
}

/// What the token handler does under `fault`: a canned response, or (for `Slow`) go
/// on normally after the delay.
pub(crate) async fn apply(fault: TokenFault) -> Option<Response> {
    match fault {
        TokenFault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = format!("{status}\n");
            Some((status, [(header::CONTENT_TYPE, "text/plain")], body).into_response())
        }
        TokenFault::TooManyRequests { retry_after } => {
            let mut r = (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "text/plain")],
                "Too Many Requests\n",
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            Some(r)
        }
        TokenFault::Html => Some(
            (
                StatusCode::OK,
                Html("<!doctype html><title>Sign in to the network</title><p>Welcome!</p>\n"),
            )
                .into_response(),
        ),
        TokenFault::NoAccessToken => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"token_type":"Bearer","expires_in":3600}"#,
            )
                .into_response(),
        ),
        TokenFault::Slow(d) => {
            tokio::time::sleep(d).await;
            None
        }
        TokenFault::Hang => std::future::pending().await,
    }
}
