//! The admin listener's routes and handlers.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::Deserialize;

use super::auth::{LOGIN_COOKIE, SESSION_COOKIE, cookie, header_password, set_cookie};
use super::{AdminState, MAX_BODY, SESSION_TTL, page};
use crate::secret::ct_eq;

/// How long the login form's anti-CSRF cookie lives.
const LOGIN_FORM_TTL: u64 = 3600;

pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/accounts", get(api_accounts))
        .route("/", get(index))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route(
            "/accounts/{name}/login",
            post(super::actions::account_login),
        )
        .route(
            "/accounts/{name}/verify",
            post(super::actions::account_verify),
        )
        .route(
            "/accounts/{name}/logout",
            post(super::actions::account_logout),
        )
        .route(super::CALLBACK_PATH, get(super::actions::callback))
        .route("/export", post(super::actions::export))
        .route("/import", post(super::actions::import))
        .route("/api/accounts/{name}/login", post(super::api::login))
        .route("/api/accounts/{name}/verify", post(super::api::verify))
        .route("/api/accounts/{name}/logout", post(super::api::logout))
        .route("/api/export", post(super::api::export))
        .route("/api/import", post(super::api::import))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// No caching, no framing, no sniffing, no referrer; the page loads nothing from
/// anywhere and posts only to itself.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AdminState>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

pub(super) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"oauth-mail-proxy admin\", charset=\"UTF-8\"",
        )],
        "admin password required\n",
    )
        .into_response()
}

/// The CSRF token of the request's live page session, if any.
pub(super) fn session(state: &AdminState, headers: &HeaderMap) -> Option<String> {
    let c = cookie(headers, SESSION_COOKIE)?;
    state.inner.auth.sessions.check(&c)
}

/// Lets an API request through with a page session or the admin password in the
/// `Authorization` header (Basic or Bearer).
pub(super) async fn api_auth(
    state: &AdminState,
    headers: &HeaderMap,
    source: IpAddr,
) -> Result<(), Response> {
    if session(state, headers).is_some() {
        return Ok(());
    }
    match header_password(headers) {
        Some(pw) => match state.inner.auth.check(source, pw).await {
            true => Ok(()),
            false => Err(unauthorized()),
        },
        None => Err(unauthorized()),
    }
}

/// Runs `f` on the blocking pool (it reads the token store).
pub(super) async fn blocking<T: Send + 'static>(
    state: &AdminState,
    f: impl FnOnce(&AdminState) -> T + Send + 'static,
) -> Result<T, Response> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response())
}

/// The API's text answers: auth, then `f` on the blocking pool, sent as `content_type`.
async fn authed_text(
    state: &AdminState,
    headers: &HeaderMap,
    peer: SocketAddr,
    content_type: &'static str,
    f: impl FnOnce(&AdminState) -> String + Send + 'static,
) -> Response {
    if let Err(r) = api_auth(state, headers, peer.ip()).await {
        return r;
    }
    match blocking(state, f).await {
        Ok(text) => ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        Err(r) => r,
    }
}

async fn metrics(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    authed_text(
        &state,
        &headers,
        peer,
        content_type,
        AdminState::render_metrics,
    )
    .await
}

async fn api_accounts(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    authed_text(&state, &headers, peer, "application/json", |s| {
        crate::ops::status::to_json(&s.account_statuses())
    })
    .await
}

pub(super) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The login form, with a fresh anti-CSRF token in a cookie and in the form.
fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let csrf = crate::secret::random_token(24);
    let mut res = html(status, page::login(&csrf, error));
    if let Ok(v) = HeaderValue::from_str(&set_cookie(LOGIN_COOKIE, &csrf, LOGIN_FORM_TTL)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

async fn index(State(state): State<AdminState>, headers: HeaderMap) -> Response {
    let Some(csrf) = session(&state, &headers) else {
        return login_page(StatusCode::OK, None);
    };
    match blocking(&state, AdminState::account_statuses).await {
        Ok(list) => html(
            StatusCode::OK,
            page::overview(
                &list,
                &state.inner.logins.snapshot(),
                &csrf,
                crate::oauth::outcome::unix_now(),
            ),
        ),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct LoginForm {
    password: SecretString,
    csrf: String,
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    pub csrf: String,
}

/// A 303 to the overview, setting these cookies.
pub(super) fn see_overview(cookies: &[String]) -> Response {
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    res
}

async fn login(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE);
    if !expected.is_some_and(|c| ct_eq(c.as_bytes(), form.csrf.as_bytes())) {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("The login form expired or came from elsewhere: try again."),
        );
    }
    if !state.inner.auth.check(peer.ip(), form.password).await {
        return login_page(StatusCode::UNAUTHORIZED, Some("Wrong password."));
    }
    let session = state.inner.auth.sessions.create();
    tracing::info!(source = %peer.ip(), "admin: logged in");
    see_overview(&[
        set_cookie(SESSION_COOKIE, &session, SESSION_TTL.as_secs()),
        set_cookie(LOGIN_COOKIE, "", 0),
    ])
}

async fn logout(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some(c) = cookie(&headers, SESSION_COOKIE) else {
        return see_overview(&[]);
    };
    match state.inner.auth.sessions.check(&c) {
        Some(csrf) if ct_eq(csrf.as_bytes(), form.csrf.as_bytes()) => {
            state.inner.auth.sessions.remove(&c);
            see_overview(&[set_cookie(SESSION_COOKIE, "", 0)])
        }
        Some(_) => (StatusCode::FORBIDDEN, "bad anti-CSRF token\n").into_response(),
        None => see_overview(&[set_cookie(SESSION_COOKIE, "", 0)]),
    }
}
