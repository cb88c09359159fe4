//! The page's buttons: per-account login / verify / logout, the OAuth callback, and
//! export (a download) / import (an upload). Every POST needs the page session and
//! its anti-CSRF token; each answers with a 303 back to the overview, which shows the
//! result ([`super::logins::Activity`]).

use axum::body::Bytes;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::logins::{self, LoginStart};
use super::routes::{CsrfForm, html, see_overview, session};
use super::{AdminState, page_actions};
use crate::secret::ct_eq;

/// Lets a form through with a live session whose anti-CSRF token matches; else
/// the answer to give.
fn rejected(state: &AdminState, headers: &HeaderMap, csrf: &str) -> Option<Response> {
    match session(state, headers) {
        None => Some(see_overview(&[])),
        Some(t) if ct_eq(t.as_bytes(), csrf.as_bytes()) => None,
        Some(_) => Some((StatusCode::FORBIDDEN, "bad anti-CSRF token\n").into_response()),
    }
}

/// The account of a page form `/accounts/{name}/..`: extracted once the form's
/// session and anti-CSRF token pass ([`rejected`]), 404 if there is no account `name`.
pub(super) struct AccountForm {
    name: String,
    account: crate::config::Account,
}

impl FromRequest<AdminState> for AccountForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AdminState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let Path(name) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let Form(form) = Form::<CsrfForm>::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if let Some(r) = rejected(state, &headers, &form.csrf) {
            return Err(r);
        }
        let account = logins::find_account(state, &name)
            .map_err(|e| (StatusCode::NOT_FOUND, e).into_response())?;
        Ok(AccountForm { name, account })
    }
}

pub(super) async fn account_login(
    State(state): State<AdminState>,
    headers: HeaderMap,
    AccountForm { name, account }: AccountForm,
) -> Response {
    match logins::start(&state, &account, &headers).await {
        // Not a 303: the page's CSP (`form-action 'self'`) would block a form's
        // redirect to another origin. A page that moves on by itself is not a form
        // submission.
        Ok(LoginStart::Redirect(url)) => html(StatusCode::OK, page_actions::to_provider(&url)),
        Ok(_) => see_overview(&[]),
        Err(e) => {
            state
                .inner
                .logins
                .record(&name, "login", Some(false), e.clone());
            see_overview(&[])
        }
    }
}

pub(super) async fn account_verify(
    State(state): State<AdminState>,
    AccountForm { name, account }: AccountForm,
) -> Response {
    if let Err(e) = logins::verify(&state, &account).await {
        state.inner.logins.record(&name, "verify", Some(false), e);
    }
    see_overview(&[])
}

pub(super) async fn account_logout(
    State(state): State<AdminState>,
    AccountForm { account, .. }: AccountForm,
) -> Response {
    let _ = logins::logout(&state, &account).await;
    see_overview(&[])
}

/// `GET /oauth/callback`: no session needed (the `state` is the proof, and a
/// SameSite=Strict cookie may not come along on the way back from the provider).
/// Answers with a page that goes on to the overview, so the cookie is sent again.
pub(super) async fn callback(
    State(state): State<AdminState>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let (status, text) = match logins::callback(&state, &query).await {
        Ok(account) => (
            StatusCode::OK,
            format!("{account}: logged in; tokens saved."),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, e),
    };
    html(status, page_actions::callback(&text))
}

#[derive(Deserialize)]
pub(super) struct ExportForm {
    csrf: String,
    passphrase: SecretString,
}

/// The export file of every account and token record, sealed with `passphrase`.
pub(super) async fn export_file(state: &AdminState, passphrase: SecretString) -> Response {
    if passphrase.expose_secret().chars().count() < crate::ops::passphrase::MIN_LEN {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "the passphrase must have at least {} characters\n",
                crate::ops::passphrase::MIN_LEN
            ),
        )
            .into_response();
    }
    let st = state.clone();
    let r = tokio::task::spawn_blocking(move || {
        crate::ops::export::export_bytes(&st.config(), st.inner.tokens.store(), &passphrase)
    })
    .await;
    match r {
        Ok(Ok((bytes, accounts, tokens))) => {
            tracing::info!(
                accounts = accounts.len(),
                tokens,
                "admin: export downloaded"
            );
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"oauth-mail-proxy-export.bin\"",
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response(),
    }
}

pub(super) async fn export(
    State(state): State<AdminState>,
    headers: HeaderMap,
    Form(form): Form<ExportForm>,
) -> Response {
    if let Some(r) = rejected(&state, &headers, &form.csrf) {
        return r;
    }
    export_file(&state, form.passphrase).await
}

/// Imports an export held in memory; the lines say what was done.
pub(super) async fn import_bytes(
    state: &AdminState,
    passphrase: SecretString,
    data: Vec<u8>,
) -> Result<Vec<String>, String> {
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let payload = crate::ops::export::parse(&passphrase, &data).map_err(|e| e.to_string())?;
        let config = st.config();
        let r = crate::ops::export::import(&config, st.inner.tokens.store(), &payload)
            .map_err(|e| e.to_string())?;
        let mut lines = r.tokens;
        for a in &r.missing_accounts {
            lines.push(format!(
                "{}: in the export but not in the config (add its [[account]] block)",
                a.username
            ));
        }
        for a in &r.differing_accounts {
            lines.push(format!(
                "{a}: its settings in the export differ from the config (config kept)"
            ));
        }
        Ok(lines)
    })
    .await
    .map_err(|_| "internal error".to_string())?
}

/// `POST /import`: a `multipart/form-data` upload with `csrf`, `passphrase` and
/// `file`.
pub(super) async fn import(
    State(state): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(parts) = multipart(&headers, &body) else {
        return (StatusCode::BAD_REQUEST, "expected multipart/form-data\n").into_response();
    };
    let field = |n: &str| parts.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let csrf = field("csrf").map(|v| String::from_utf8_lossy(&v).into_owned());
    if let Some(r) = rejected(&state, &headers, csrf.as_deref().unwrap_or("")) {
        return r;
    }
    let passphrase = field("passphrase")
        .map(|v| SecretString::from(String::from_utf8_lossy(&v).into_owned()))
        .unwrap_or_else(|| SecretString::from(String::new()));
    let data = field("file").unwrap_or_default();
    let (ok, text) = match import_bytes(&state, passphrase, data).await {
        Ok(lines) => (true, lines.join("\n")),
        Err(e) => (false, format!("import failed: {e}")),
    };
    state
        .inner
        .logins
        .record("(import)", "import", Some(ok), text);
    see_overview(&[])
}

/// The fields of a `multipart/form-data` body: (name, bytes).
fn multipart(headers: &HeaderMap, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    if !ct.to_ascii_lowercase().starts_with("multipart/form-data") {
        return None;
    }
    let boundary = ct
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))?
        .1
        .trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let mut out = Vec::new();
    let mut rest = body;
    let start = find(rest, &delim)?;
    rest = &rest[start + delim.len()..];
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        let data_start = head_end + 4;
        let mut next_delim = b"\r\n".to_vec();
        next_delim.extend_from_slice(&delim);
        let len = find(&rest[data_start..], &next_delim)?;
        let name = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .and_then(|l| {
                l.split(';')
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(k, _)| *k == "name")
                    .map(|(_, v)| v.trim_matches('"').to_owned())
            })?;
        out.push((name, rest[data_start..data_start + len].to_vec()));
        rest = &rest[data_start + len + next_delim.len()..];
    }
    Some(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn parses_multipart() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=XyZ"),
        );
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.bin\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\x00\x01\r\n\x02\r\n--XyZ--\r\n";
        let parts = multipart(&h, body).unwrap();
        assert_eq!(parts[0], ("csrf".to_string(), b"abc".to_vec()));
        assert_eq!(parts[1], ("file".to_string(), b"\x00\x01\r\n\x02".to_vec()));
        assert!(multipart(&h, b"garbage").is_none());
    }
}
