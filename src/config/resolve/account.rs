//! An `[[account]]`: user name (plain or a `*@domain` template), password hash,
//! provider presets, OAuth endpoint URLs, mechanism, upstream user name and
//! `encrypt_with`. The `flow` keys are in [`flow`](super::flow), a template's users in
//! [`password_file`](super::password_file).

use super::*;

const GOOGLE_AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/auth";
const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
/// RFC 7009 token revocation (Microsoft has no such endpoint).
const GOOGLE_REVOKE: &str = "https://oauth2.googleapis.com/revoke";
const GOOGLE_SCOPES: &[&str] = &["https://mail.google.com/"];
const MICROSOFT_SCOPES: &[&str] = &[
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/POP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
];

/// Resolves one `[[account]]` (a template account reads its password file here).
pub(super) fn resolve(cx: &Ctx, a: &raw::Account) -> Result<Account, ConfigError> {
    let username = a.username.get_ref().trim().to_string();
    if username.is_empty() || username.chars().any(|c| c.is_control()) {
        return Err(cx.invalid(
            &a.username,
            "account.username",
            "must be a non-empty name without control characters",
        ));
    }
    let template = template_domain(cx, &a.username)?;
    let password_hash = match (&template, &a.password_hash, &a.password_file) {
        (None, Some(h), None) => {
            crate::accounts::check_phc(h.get_ref()).map_err(|e| {
                cx.invalid(
                    h,
                    "account.password_hash",
                    format!("{e}; create one with `oauth-mail-proxy hash-password`"),
                )
            })?;
            h.get_ref().clone()
        }
        (None, None, _) => {
            return Err(cx.invalid(
                &a.username,
                "account.password_hash",
                "required; create one with `oauth-mail-proxy hash-password`",
            ));
        }
        (None, Some(_), Some(f)) => {
            return Err(cx.invalid(
                f,
                "account.password_file",
                "only for template accounts (username = \"*@domain\"); this account has `password_hash`",
            ));
        }
        (Some(_), Some(h), _) => {
            return Err(cx.invalid(
                h,
                "account.password_hash",
                "not allowed on a template account: its users' hashes go in `password_file`",
            ));
        }
        (Some(_), None, None) => {
            return Err(cx.invalid(
                &a.username,
                "account.password_file",
                "required for a template account (username = \"*@domain\")",
            ));
        }
        (Some(_), None, Some(_)) => String::new(),
    };
    let template = match (template, &a.password_file) {
        (Some(domain), Some(f)) => Some(password_file::load(cx, f, domain)?),
        _ => None,
    };
    if let (Some(_), Some(u)) = (&template, &a.upstream_username) {
        return Err(cx.invalid(
            u,
            "account.upstream_username",
            "not allowed on a template account: every user logs in upstream as itself (one upstream_username would let many users act as one mailbox)",
        ));
    }
    let service_account_key = a.service_account_key.as_ref().map(|k| cx.path(k.get_ref()));
    let provider = match &a.provider {
        None => Provider::Custom,
        Some(p) => match one_of(
            cx,
            p,
            "account.provider",
            &["google", "microsoft", "custom"],
        )? {
            "google" => Provider::Google,
            "microsoft" => Provider::Microsoft,
            _ => Provider::Custom,
        },
    };
    if let (Some(t), false) = (&a.tenant, provider == Provider::Microsoft) {
        return Err(cx.invalid(
            t,
            "account.tenant",
            "only used with provider = \"microsoft\"",
        ));
    }
    let tenant = a.tenant.as_ref().map_or("common", |t| t.get_ref().as_str());
    let (preset_auth, preset_token, preset_scopes): (Option<String>, Option<String>, &[&str]) =
        match provider {
            Provider::Google => (
                Some(GOOGLE_AUTHORIZE.into()),
                Some(GOOGLE_TOKEN.into()),
                GOOGLE_SCOPES,
            ),
            Provider::Microsoft => (
                Some(format!(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
                )),
                Some(format!(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
                )),
                MICROSOFT_SCOPES,
            ),
            Provider::Custom => (None, None, &[]),
        };
    let flow = flow::parse(cx, a)?;
    let authorize_url = oauth_url(
        cx,
        &a.authorize_url,
        preset_auth.or_else(|| flow::authorize_placeholder(flow, a)),
        "account.authorize_url",
        &a.username,
    )?;
    let token_url = oauth_url(
        cx,
        &a.token_url,
        preset_token,
        "account.token_url",
        &a.username,
    )?;
    let mut scopes = match &a.scopes {
        Some(s) => s.get_ref().clone(),
        None => preset_scopes.iter().map(|s| s.to_string()).collect(),
    };
    let keys = flow::resolve(cx, a, flow, provider, tenant, &token_url, &mut scopes)?;
    if a.client_id.get_ref().is_empty() {
        return Err(cx.invalid(&a.client_id, "account.client_id", "must not be empty"));
    }
    let mechanism = match &a.mechanism {
        None => Mechanism::Xoauth2,
        Some(m) => match one_of(cx, m, "account.mechanism", &["xoauth2", "oauthbearer"])? {
            "xoauth2" => Mechanism::Xoauth2,
            _ => Mechanism::Oauthbearer,
        },
    };
    let upstream_username = match &a.upstream_username {
        Some(u) if u.get_ref().trim().is_empty() => {
            return Err(cx.invalid(u, "account.upstream_username", "must not be empty"));
        }
        Some(u) => u.get_ref().trim().to_string(),
        None => username.clone(),
    };
    let encrypt_with = match &a.encrypt_with {
        None => EncryptWith::StateKey,
        Some(e) => match one_of(
            cx,
            e,
            "account.encrypt_with",
            &["state-key", "client-password"],
        )? {
            "state-key" => EncryptWith::StateKey,
            _ if !flow.is_interactive() => {
                return Err(cx.invalid(
                    e,
                    "account.encrypt_with",
                    "\"client-password\" needs a user flow (authorization_code or device_code): the proxy fetches app-only tokens by itself, without a client password",
                ));
            }
            _ => EncryptWith::ClientPassword,
        },
    };
    Ok(Account {
        username,
        password_hash,
        encrypt_with,
        template,
        service_account_key,
        upstream_username,
        mechanism,
        oauth: OAuthClient {
            provider,
            client_id: a.client_id.get_ref().clone(),
            client_secret: a
                .client_secret
                .as_ref()
                .map(|s| s.get_ref().clone())
                .filter(|s| !s.is_empty())
                .map(SecretString::from),
            authorize_url,
            token_url,
            scopes,
            flow,
            device_authorization_url: keys.device_authorization_url,
            refresh_url: keys.refresh_url,
            token_scopes: keys.token_scopes,
            login_hint: keys.login_hint,
            prompt: keys.prompt,
            redirect_uri: keys.redirect_uri,
            revocation_url: match (&a.revocation_url, provider) {
                (None, Provider::Google) => Some(GOOGLE_REVOKE.parse().expect("valid preset")),
                (None, _) => None,
                (Some(_), _) => Some(oauth_url(
                    cx,
                    &a.revocation_url,
                    None,
                    "account.revocation_url",
                    &a.username,
                )?),
            },
        },
    })
}

/// `Some(domain)` for a template user name `*@domain`, `None` for a plain one; any
/// other use of `*` is refused.
fn template_domain(cx: &Ctx, v: &Spanned<String>) -> Result<Option<String>, ConfigError> {
    let name = v.get_ref().trim();
    if !name.contains('*') {
        return Ok(None);
    }
    match name.strip_prefix("*@") {
        Some(d) if valid_domain(d) => Ok(Some(d.to_ascii_lowercase())),
        _ => Err(cx.invalid(
            v,
            "account.username",
            "a template must be \"*@domain\" (the only wildcard form), e.g. \"*@example.com\"",
        )),
    }
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && !d.starts_with('.')
        && !d.ends_with('.')
        && !d.contains("..")
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

pub(super) fn oauth_url(
    cx: &Ctx,
    v: &Option<Spanned<String>>,
    preset: Option<String>,
    key: &str,
    account: &Spanned<String>,
) -> Result<Url, ConfigError> {
    let (text, span) = match (v, preset) {
        (Some(s), _) => (s.get_ref().clone(), s.span()),
        (None, Some(p)) => (p, account.span()),
        (None, None) => {
            return Err(cx.invalid(account, key, "required for provider = \"custom\""));
        }
    };
    let url =
        Url::parse(&text).map_err(|e| cx.err(span.clone(), key, format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if url.host_str().is_some_and(is_loopback_host_url) => Ok(url),
        "http" => Err(cx.err(
            span,
            key,
            "http:// is only allowed for a loopback host; use https://",
        )),
        s => Err(cx.err(span, key, format!("unsupported scheme \"{s}\""))),
    }
}
