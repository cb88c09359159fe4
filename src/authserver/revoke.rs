//! `POST /revoke`: token revocation (RFC 7009). The client authenticates as at
//! `/token`; `token` names a refresh or access token, `token_type_hint` says which to
//! look up first (both are looked up anyway). Revoking a refresh token revokes its whole family (every access
//! and refresh token grown from the same grant); revoking an access token revokes
//! that token. Unknown tokens get 200 too (§2.2): the client's goal is reached.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::error::{OAuthError, no_store};
use super::params::{Params, authenticate_client, is_form};

pub(crate) async fn revoke(
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
        let token = p.require("token", "missing token")?;
        let hint = p.get("token_type_hint");
        if !matches!(hint, None | Some("refresh_token" | "access_token")) {
            // §2.2.1: an unknown hint may be ignored; this server is strict so tests
            // catch a client sending something odd.
            return Err(OAuthError::InvalidRequest("unsupported token_type_hint"));
        }
        Ok(s.store().revoke_token(token, &s.cfg.client_id))
    })();
    match result {
        Ok(found) => {
            s.revocations.fetch_add(1, Ordering::SeqCst);
            tracing::info!(found, "token revocation");
            (StatusCode::OK, no_store()).into_response()
        }
        Err(e) => {
            tracing::info!(error = %e, "revocation request rejected");
            e.into_response()
        }
    }
}
