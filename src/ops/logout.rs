//! `logout`: revoke an account's tokens at the provider (RFC 7009) where it has a
//! revocation endpoint (`revocation_url`), then delete them from the store.

use secrecy::ExposeSecret;

use super::OpsError;
use crate::config::Account;
use crate::oauth::TokenStore;

/// What `logout` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutReport {
    /// Lines saying what was done, for printing.
    pub done: Vec<String>,
    /// Revocation was attempted and failed (the local tokens are deleted anyway).
    pub revocation_failed: bool,
}

/// Revokes (when possible) and deletes `account`'s tokens.
pub async fn logout(
    account: &Account,
    store: &TokenStore,
    http: &reqwest::Client,
) -> Result<LogoutReport, OpsError> {
    let name = account.username.as_str();
    let mut report = LogoutReport {
        done: Vec::new(),
        revocation_failed: false,
    };
    let rec = match store.load(name) {
        Err(crate::oauth::StoreError::PasswordRequired { .. }) => {
            store.delete(name)?;
            report.done.push(format!(
                "{name}: the tokens were encrypted with the client password, so they were not revoked (the grant stays valid at the provider until it expires or you remove the app's access there); token file deleted"
            ));
            return Ok(report);
        }
        other => other?,
    };
    let Some(rec) = rec else {
        report
            .done
            .push(format!("{name}: no tokens stored; nothing to do"));
        return Ok(report);
    };
    match &account.oauth.revocation_url {
        None => report.done.push(format!(
            "{name}: the provider has no revocation endpoint (no `revocation_url`): the grant stays valid at the provider until it expires; remove the app's access in the account's security settings to end it now"
        )),
        Some(url) => {
            // Revoking the refresh token ends the whole grant (RFC 7009 §2.1); without
            // one, revoke the access token.
            let (token, hint) = match &rec.refresh_token {
                Some(rt) => (rt, "refresh_token"),
                None => (&rec.access_token, "access_token"),
            };
            match revoke(http, account, url, token.expose_secret(), hint).await {
                Ok(()) => report
                    .done
                    .push(format!("{name}: {hint} revoked at {url}")),
                Err(e) => {
                    report.revocation_failed = true;
                    report
                        .done
                        .push(format!("{name}: revocation at {url} failed: {e}"));
                }
            }
        }
    }
    store.delete(name)?;
    report.done.push(format!(
        "{name}: tokens deleted from {}; run `oauth-mail-proxy login {name}` to use the account again",
        store.dir().display()
    ));
    Ok(report)
}

/// One RFC 7009 request: the token and its type hint, with client authentication
/// (HTTP Basic with a secret; `client_id` in the body for a public client).
async fn revoke(
    http: &reqwest::Client,
    account: &Account,
    url: &url::Url,
    token: &str,
    hint: &str,
) -> Result<(), String> {
    let oauth = &account.oauth;
    let mut form: Vec<(&str, &str)> = vec![("token", token), ("token_type_hint", hint)];
    let mut req = http.post(url.clone());
    match &oauth.client_secret {
        Some(secret) => {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&oauth.client_id), Some(enc(secret.expose_secret())));
        }
        None => form.push(("client_id", oauth.client_id.as_str())),
    }
    let resp = tokio::time::timeout(crate::oauth::REFRESH_TIMEOUT, req.form(&form).send())
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("request failed: {}", crate::oauth::client::error_chain(&e)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    // Quote only the OAuth error fields, never the body as such.
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let field = |k: &str| body.get(k).and_then(|v| v.as_str()).map(super::wire::clip);
    Err(match (field("error"), field("error_description")) {
        (Some(e), Some(d)) => format!("HTTP {}: {e}: {d}", status.as_u16()),
        (Some(e), None) => format!("HTTP {}: {e}", status.as_u16()),
        _ => format!("HTTP {}", status.as_u16()),
    })
}
