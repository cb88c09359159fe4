//! The `flow` of an account and the keys that go with it: `device_authorization_url`,
//! `refresh_url`, `token_scopes`, `login_hint`, `prompt`, `redirect_uri`.

use super::*;

const GOOGLE_DEVICE: &str = "https://oauth2.googleapis.com/device/code";
/// Microsoft's app-only scope for IMAP/POP/SMTP with `client_credentials`.
const MICROSOFT_APP_SCOPES: &[&str] = &["https://outlook.office365.com/.default"];

/// The keys resolved here, in [`OAuthClient`] form.
pub(super) struct FlowKeys {
    pub device_authorization_url: Option<Url>,
    pub refresh_url: Url,
    pub token_scopes: Option<Vec<String>>,
    pub login_hint: Option<String>,
    pub prompt: Option<String>,
    pub redirect_uri: Option<Url>,
}

/// `account.flow` (default `authorization_code`).
pub(super) fn parse(cx: &Ctx, a: &raw::Account) -> Result<Flow, ConfigError> {
    let Some(f) = &a.flow else {
        return Ok(Flow::AuthorizationCode);
    };
    Ok(
        match one_of(
            cx,
            f,
            "account.flow",
            &[
                "authorization_code",
                "device_code",
                "client_credentials",
                "jwt_bearer",
            ],
        )? {
            "authorization_code" => Flow::AuthorizationCode,
            "device_code" => Flow::DeviceCode,
            "client_credentials" => Flow::ClientCredentials,
            _ => Flow::JwtBearer,
        },
    )
}

/// For flows without a browser step `authorize_url` is never used: a custom
/// provider need not name one (the token URL stands in).
pub(super) fn authorize_placeholder(flow: Flow, a: &raw::Account) -> Option<String> {
    match flow {
        Flow::AuthorizationCode => None,
        _ => a.token_url.as_ref().map(|t| t.get_ref().clone()),
    }
}

/// Resolves the flow's keys; may replace preset `scopes` (Microsoft app-only).
pub(super) fn resolve(
    cx: &Ctx,
    a: &raw::Account,
    flow: Flow,
    provider: Provider,
    tenant: &str,
    token_url: &Url,
    scopes: &mut Vec<String>,
) -> Result<FlowKeys, ConfigError> {
    let flow_span = a.flow.as_ref().map_or(a.username.span(), |f| f.span());
    match flow {
        Flow::ClientCredentials
            if a.client_secret
                .as_ref()
                .is_none_or(|s| s.get_ref().is_empty()) =>
        {
            return Err(cx.err(
                flow_span,
                "account.client_secret",
                "flow = \"client_credentials\" requires `client_secret`",
            ));
        }
        Flow::JwtBearer if a.service_account_key.is_none() => {
            return Err(cx.err(
                flow_span,
                "account.flow",
                "flow = \"jwt_bearer\" requires `service_account_key`",
            ));
        }
        _ => {}
    }
    if flow == Flow::ClientCredentials && provider == Provider::Microsoft && a.scopes.is_none() {
        *scopes = MICROSOFT_APP_SCOPES.iter().map(|s| s.to_string()).collect();
    }

    let device_authorization_url = match (&a.device_authorization_url, flow) {
        (Some(d), f) if f != Flow::DeviceCode => {
            return Err(cx.invalid(
                d,
                "account.device_authorization_url",
                "only used with flow = \"device_code\"",
            ));
        }
        (_, Flow::DeviceCode) => {
            let preset = match provider {
                Provider::Google => Some(GOOGLE_DEVICE.to_string()),
                Provider::Microsoft => Some(format!(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode"
                )),
                Provider::Custom => None,
            };
            if a.device_authorization_url.is_none() && preset.is_none() {
                return Err(cx.err(
                    flow_span,
                    "account.device_authorization_url",
                    "required for flow = \"device_code\" with provider = \"custom\"",
                ));
            }
            Some(oauth_url(
                cx,
                &a.device_authorization_url,
                preset,
                "account.device_authorization_url",
                &a.username,
            )?)
        }
        _ => None,
    };
    let refresh_url = oauth_url(
        cx,
        &a.refresh_url,
        Some(token_url.to_string()),
        "account.refresh_url",
        &a.username,
    )?;
    let token_scopes = a.token_scopes.as_ref().map(|s| s.get_ref().clone());

    let browser_only = |v: &Option<Spanned<String>>, key: &str| -> Result<(), ConfigError> {
        match v {
            Some(s) if flow != Flow::AuthorizationCode => {
                Err(cx.invalid(s, key, "only used with flow = \"authorization_code\""))
            }
            Some(s) if s.get_ref().chars().any(char::is_control) => {
                Err(cx.invalid(s, key, "must not contain control characters"))
            }
            _ => Ok(()),
        }
    };
    browser_only(&a.login_hint, "account.login_hint")?;
    browser_only(&a.prompt, "account.prompt")?;
    browser_only(&a.redirect_uri, "account.redirect_uri")?;
    let login_hint = a
        .login_hint
        .as_ref()
        .map(|s| s.get_ref().trim().to_string());
    let prompt = a
        .prompt
        .as_ref()
        .map(|s| s.get_ref().trim().to_string())
        .filter(|s| !s.is_empty());
    let redirect_uri = match &a.redirect_uri {
        None => None,
        Some(r) => Some(redirect_uri(cx, r)?),
    };
    Ok(FlowKeys {
        device_authorization_url,
        refresh_url,
        token_scopes,
        login_hint,
        prompt,
        redirect_uri,
    })
}

/// A fixed loopback redirect URI: `http://127.0.0.1:PORT/`, `http://[::1]:PORT/` or
/// `http://localhost:PORT/path` (or the same with `https://`, served with the local
/// certificate), with an explicit port and no query or fragment.
fn redirect_uri(cx: &Ctx, r: &Spanned<String>) -> Result<Url, ConfigError> {
    const KEY: &str = "account.redirect_uri";
    let url = Url::parse(r.get_ref()).map_err(|e| cx.invalid(r, KEY, format!("not a URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => {}
        s => return Err(cx.invalid(r, KEY, format!("unsupported scheme \"{s}\""))),
    }
    if !url.host_str().is_some_and(is_loopback_host_url) {
        return Err(cx.invalid(
            r,
            KEY,
            "must be a loopback address: http(s)://127.0.0.1:PORT/, http(s)://[::1]:PORT/ or http(s)://localhost:PORT/",
        ));
    }
    if url.port().is_none_or(|p| p == 0) {
        return Err(cx.invalid(
            r,
            KEY,
            "needs an explicit port, e.g. http://127.0.0.1:8400/ (leave `redirect_uri` out to use any free port)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(cx.invalid(r, KEY, "must not have a query, fragment or user info"));
    }
    Ok(url)
}
