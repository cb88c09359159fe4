//! The JSON API of the account actions (Basic / Bearer admin password, or the page
//! session): `POST /api/accounts/{name}/login|verify|logout`, `POST /api/export`
//! (`{"passphrase": ".."}` → the sealed file), `POST /api/import` (the file as the
//! body, the passphrase in the `X-Passphrase` header).

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::AdminState;
use super::logins::{self, LoginStart};
use super::routes::api_auth;

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "ok": false, "error": msg.into() }))).into_response()
}

/// The account of `/api/accounts/{name}/..`: extracted after the auth passed (else
/// the auth's answer), 404 if there is no account `name`.
pub(super) struct ApiAccount {
    name: String,
    account: crate::config::Account,
}

impl FromRequestParts<AdminState> for ApiAccount {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        api_auth(state, &parts.headers, peer.ip()).await?;
        let account =
            logins::find_account(state, &name).map_err(|e| error(StatusCode::NOT_FOUND, e))?;
        Ok(ApiAccount { name, account })
    }
}

pub(super) async fn login(
    State(state): State<AdminState>,
    headers: HeaderMap,
    ApiAccount { name, account }: ApiAccount,
) -> Response {
    let flow = account.oauth.flow.name();
    match logins::start(&state, &account, &headers).await {
        Ok(LoginStart::Redirect(url)) => Json(json!({
            "ok": true, "account": name, "flow": flow,
            "authorization_url": url.as_str(),
        }))
        .into_response(),
        Ok(LoginStart::Device(p)) => Json(json!({
            "ok": true, "account": name, "flow": flow,
            "verification_uri": p.verification_uri.as_str(),
            "verification_uri_complete": p.verification_uri_complete.as_ref().map(|u| u.as_str()),
            "user_code": p.user_code,
            "expires_in": p.expires_in.as_secs(),
        }))
        .into_response(),
        Ok(LoginStart::Done(msg)) => {
            Json(json!({ "ok": true, "account": name, "flow": flow, "message": msg }))
                .into_response()
        }
        Err(e) => error(StatusCode::BAD_GATEWAY, e),
    }
}

pub(super) async fn verify(
    State(state): State<AdminState>,
    ApiAccount { account, .. }: ApiAccount,
) -> Response {
    let r = match logins::verify(&state, &account).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let check = |res: &Result<String, crate::ops::verify::Failed>| match res {
        Ok(m) => json!({ "ok": true, "message": m }),
        Err(f) => json!({
            "ok": false, "error": f.error,
            "kind": f.diagnosis.kind.word(), "hint": f.diagnosis.render(""),
        }),
    };
    let listeners: Vec<_> = r
        .listeners
        .iter()
        .map(|l| {
            let mut v = check(&l.result);
            v["protocol"] = json!(l.protocol.name());
            v["listener"] = json!(l.listener);
            v
        })
        .collect();
    Json(json!({
        "ok": r.passed(), "account": r.account, "flow": r.flow,
        "token": check(&r.token), "listeners": listeners, "report": r.render(),
    }))
    .into_response()
}

pub(super) async fn logout(
    State(state): State<AdminState>,
    ApiAccount { name, account }: ApiAccount,
) -> Response {
    match logins::logout(&state, &account).await {
        Ok(r) => Json(json!({
            "ok": true, "account": name, "done": r.done,
            "revocation_failed": r.revocation_failed,
        }))
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(Deserialize)]
pub(super) struct ExportBody {
    passphrase: SecretString,
}

pub(super) async fn export(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<ExportBody>,
) -> Response {
    if let Err(r) = api_auth(&state, &headers, peer.ip()).await {
        return r;
    }
    super::actions::export_file(&state, body.passphrase).await
}

/// Header carrying the passphrase of `POST /api/import`.
pub const PASSPHRASE_HEADER: &str = "x-passphrase";

pub(super) async fn import(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = api_auth(&state, &headers, peer.ip()).await {
        return r;
    }
    let Some(pass) = headers
        .get(PASSPHRASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| SecretString::from(v.to_owned()))
    else {
        return error(StatusCode::BAD_REQUEST, "missing X-Passphrase header");
    };
    match super::actions::import_bytes(&state, pass, body.to_vec()).await {
        Ok(lines) => Json(json!({ "ok": true, "done": lines })).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}
