//! The three HTTP endpoints: `/authorize`, `/token` and `/introspect`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use url::Url;

use super::Shared;
use super::error::{OAuthError, no_store};
use super::params::{Params, authenticate_client, bearer, is_form, is_pkce_string};
use super::store::{ActiveToken, CodeGrant, Issued};

/// Scope granted when a request names none.
pub(crate) const DEFAULT_SCOPE: &str = "mail";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/revoke", post(super::revoke::revoke))
        .route("/introspect", get(introspect_get).post(introspect_post))
        .route("/device", post(super::device::authorize))
        .route("/device/verify", get(super::device::verify))
        .with_state(shared)
}

/// A 400 page for requests that cannot be redirected back (RFC 6749 §4.1.2.1: bad
/// client or redirect URI), and for authorization requests without PKCE.
fn bad_page(reason: &'static str) -> Response {
    let body = format!(
        "<!doctype html><title>400 Bad Request</title><h1>Bad Request</h1><p>{reason}</p>\n"
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// `302 Found` to `url` with the given query parameters appended.
fn redirect(mut url: Url, pairs: &[(&str, Option<&str>)]) -> Response {
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            if let Some(v) = v {
                q.append_pair(k, v);
            }
        }
    }
    let headers = [
        (header::LOCATION, String::from(url)),
        (header::CACHE_CONTROL, "no-store".to_owned()),
    ];
    (StatusCode::FOUND, headers).into_response()
}

/// GET /authorize: auto-approves as `login_hint` (or the default user) and redirects
/// with a code bound to the client, the redirect URI and the PKCE challenge.
async fn authorize(State(s): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    s.log_authorize(&query);
    let Ok(p) = Params::parse(query.as_bytes()) else {
        return bad_page("a parameter was repeated");
    };
    if p.get("client_id") != Some(s.cfg.client_id.as_str()) {
        return bad_page("unknown client_id");
    }
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return bad_page("missing redirect_uri");
    };
    let target = match Url::parse(redirect_uri) {
        Ok(u) if u.fragment().is_none() && !u.cannot_be_a_base() => u,
        _ => return bad_page("redirect_uri must be an absolute URI without fragment"),
    };
    let state = p.get("state");
    match p.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return redirect(
                target,
                &[
                    ("error", Some("unsupported_response_type")),
                    ("state", state),
                ],
            );
        }
        None => {
            return redirect(
                target,
                &[("error", Some("invalid_request")), ("state", state)],
            );
        }
    }
    if p.get("code_challenge_method") != Some("S256") {
        return bad_page("PKCE is required: code_challenge_method=S256");
    }
    let Some(challenge) = p.get("code_challenge").filter(|c| is_pkce_string(c)) else {
        return bad_page("PKCE is required: missing or malformed code_challenge");
    };
    if s.deny.load(Ordering::SeqCst) {
        tracing::info!("authorization denied (deny switch set)");
        return redirect(
            target,
            &[("error", Some("access_denied")), ("state", state)],
        );
    }
    let user = p
        .get("login_hint")
        .unwrap_or(&s.cfg.default_user)
        .to_owned();
    let grant = CodeGrant {
        client_id: s.cfg.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        challenge: challenge.to_owned(),
        scope: p.get("scope").unwrap_or(DEFAULT_SCOPE).to_owned(),
        user,
    };
    tracing::info!(user = %grant.user, "authorization approved");
    let code = s.store().new_code(grant);
    redirect(target, &[("code", Some(&code)), ("state", state)])
}

/// POST /token.
async fn token(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    s.token_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(fault) = s.token_fault()
        && let Some(response) = super::fault::apply(fault).await
    {
        tracing::info!(?fault, "token request answered with an injected fault");
        return response;
    }
    match token_grant(&s, &headers, &body) {
        Ok((grant_type, issued)) => {
            s.count_grant(grant_type);
            tracing::info!(grant_type, user = %issued.user, "tokens issued");
            (StatusCode::OK, no_store(), Json(token_json(&issued))).into_response()
        }
        Err(e) => {
            tracing::info!(error = %e, "token request rejected");
            e.into_response()
        }
    }
}

fn token_grant(
    s: &Shared,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(&'static str, Issued), OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::InvalidRequest(
            "body must be application/x-www-form-urlencoded",
        ));
    }
    let p = Params::parse(body)?;
    if p.get("grant_type") == Some(crate::oauth::jwt::GRANT_TYPE) {
        return jwt_grant(s, &p);
    }
    authenticate_client(headers, &p, &s.cfg.client_id, &s.cfg.client_secret)?;
    let client_id = s.cfg.client_id.as_str();
    match p.require("grant_type", "missing grant_type")? {
        "authorization_code" => {
            let code = p.require("code", "missing code")?;
            let redirect_uri = p.require("redirect_uri", "missing redirect_uri")?;
            let verifier =
                p.require("code_verifier", "missing code_verifier (PKCE is required)")?;
            let issued = s
                .store()
                .redeem_code(code, client_id, redirect_uri, verifier)?;
            Ok(("authorization_code", issued))
        }
        "refresh_token" => {
            let rt = p.require("refresh_token", "missing refresh_token")?;
            let issued =
                s.store()
                    .refresh(rt, client_id, p.get("scope"), s.cfg.rotate_refresh_tokens)?;
            Ok(("refresh_token", issued))
        }
        "client_credentials" => {
            // App-only tokens stand for the mailbox the proxy names upstream; this
            // server reports them as `login_hint` (a test extension) or the default
            // user, so Dovecot's introspection accepts them for that mailbox.
            let scope = p.get("scope").unwrap_or(DEFAULT_SCOPE);
            let user = p.get("login_hint").unwrap_or(&s.cfg.default_user);
            let issued = s.store().issue_new(user, client_id, scope, false);
            Ok(("client_credentials", issued))
        }
        super::device::GRANT_TYPE => {
            let (user, scope) = super::device::token_grant(s, &p, client_id)?;
            let issued = s.store().issue_new(&user, client_id, &scope, true);
            Ok(("device_code", issued))
        }
        _ => Err(OAuthError::UnsupportedGrantType),
    }
}

/// RFC 7523 §2.1: the signed assertion is the credential; no client authentication.
fn jwt_grant(s: &Shared, p: &Params) -> Result<(&'static str, Issued), OAuthError> {
    let assertion = p.require("assertion", "missing assertion")?;
    let verifier = s
        .jwt
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
        .ok_or(OAuthError::UnsupportedGrantType)?;
    let claims = super::jwt::verify(&verifier, assertion, crate::oauth::outcome::unix_now())?;
    let scope = claims.scope.as_deref().unwrap_or(DEFAULT_SCOPE);
    let issued = s.store().issue_new(&claims.sub, &claims.iss, scope, false);
    Ok(("jwt_bearer", issued))
}

fn token_json(t: &Issued) -> serde_json::Value {
    let mut v = serde_json::json!({
        "access_token": t.access_token,
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "scope": t.scope,
    });
    if let Some(rt) = &t.refresh_token {
        v["refresh_token"] = rt.as_str().into();
    }
    if let Some(secs) = t.refresh_expires_in {
        v["refresh_token_expires_in"] = secs.into();
    }
    v
}

fn introspection_response(result: Result<Option<ActiveToken>, OAuthError>) -> Response {
    let body = match result {
        Err(e) => {
            tracing::info!(error = %e, "introspection request rejected");
            return e.into_response();
        }
        Ok(None) => serde_json::json!({ "active": false }),
        Ok(Some(t)) => serde_json::json!({
            "active": true,
            "username": t.user,
            "sub": t.user,
            "client_id": t.client_id,
            "scope": t.scope,
            "token_type": "Bearer",
            "iat": t.iat,
            "exp": t.exp,
        }),
    };
    tracing::debug!(active = body["active"].as_bool(), "introspection");
    (StatusCode::OK, no_store(), Json(body)).into_response()
}

/// POST /introspect (RFC 7662): introspect-client authentication, `token=` in the body.
async fn introspect_post(
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
        authenticate_client(
            &headers,
            &p,
            &s.cfg.introspect_client_id,
            &s.cfg.introspect_client_secret,
        )?;
        let token = p.require("token", "missing token")?;
        Ok(s.store().introspect(token))
    })();
    introspection_response(result)
}

/// GET /introspect, for Dovecot's other introspection modes: `Authorization: Bearer
/// TOKEN` (mode `auth`, the token is its own credential) or `?token=` /
/// `?access_token=` with introspect-client authentication (mode `get`).
async fn introspect_get(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let result = (|| {
        if let Some(token) = bearer(&headers) {
            return Ok(s.store().introspect(token));
        }
        let p = Params::parse(q.unwrap_or_default().as_bytes())?;
        authenticate_client(
            &headers,
            &p,
            &s.cfg.introspect_client_id,
            &s.cfg.introspect_client_secret,
        )?;
        let token = p
            .get("token")
            .or_else(|| p.get("access_token"))
            .ok_or(OAuthError::InvalidRequest("missing token"))?;
        Ok(s.store().introspect(token))
    })();
    introspection_response(result)
}
