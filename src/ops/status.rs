//! `status`: each account's token state, as a table or JSON. Never a secret.

use serde::Serialize;

use super::OpsError;
use crate::config::{Account, Config};
use crate::oauth::{TokenStatus, TokenStore};

/// One account's state, as `status --json` prints it. Times are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountStatus {
    pub account: String,
    pub flow: String,
    pub token_present: bool,
    /// When the stored access token expires (`null`: unknown or none stored).
    pub access_token_valid_until: Option<u64>,
    /// The access token is usable now.
    pub access_token_valid: bool,
    pub refresh_token_present: bool,
    pub last_refresh: Option<u64>,
    /// Why the last refresh failed, when that needs the admin.
    pub last_error: Option<String>,
    pub needs_login: bool,
    /// `encrypt_with = "client-password"` and a record is stored: it opens only while
    /// that client logs in, so its times are unknown here.
    pub encrypted_with_client_password: bool,
    /// When the refresh token expires, if the server said.
    pub refresh_token_valid_until: Option<u64>,
    /// That expiry is within `[proxy] refresh_token_warning` (or past): log in again.
    pub refresh_token_expiring: bool,
}

impl AccountStatus {
    pub fn new(account: &Account, st: &TokenStatus) -> Self {
        let flow = account.oauth.flow;
        // An expired access token without a refresh token needs a login, unless the
        // flow fetches new tokens without a user.
        let dead_end = st.stored
            && !st.client_password
            && !st.valid
            && !st.has_refresh_token
            && flow.is_interactive();
        AccountStatus {
            account: st.account.clone(),
            flow: flow.name().to_string(),
            token_present: st.stored,
            access_token_valid_until: st.expires_at,
            access_token_valid: st.valid,
            refresh_token_present: st.has_refresh_token,
            last_refresh: st.last_refresh,
            last_error: st.needs_login.clone().or_else(|| st.last_error.clone()),
            needs_login: st.needs_login.is_some()
                || (flow.is_interactive() && !st.stored)
                || dead_end,
            encrypted_with_client_password: st.client_password,
            refresh_token_valid_until: st.refresh_expires_at,
            refresh_token_expiring: false,
        }
    }

    /// Marks the refresh token as expiring when its known expiry is within `warning`
    /// of `now` (unix seconds).
    pub fn with_refresh_warning(mut self, warning: std::time::Duration, now: u64) -> Self {
        self.refresh_token_expiring = self.refresh_token_present
            && self
                .refresh_token_valid_until
                .is_some_and(|at| at <= now.saturating_add(warning.as_secs()));
        self
    }
}

/// The status of the selected accounts.
pub fn collect(
    config: &Config,
    store: &TokenStore,
    filter: Option<&str>,
) -> Result<Vec<AccountStatus>, OpsError> {
    super::accounts(config, filter)?
        .iter()
        .map(|a| {
            let st = TokenStatus::load(store, &a.username)?;
            Ok(AccountStatus::new(a, &st).with_refresh_warning(
                config.proxy.refresh_token_warning,
                crate::oauth::outcome::unix_now(),
            ))
        })
        .collect()
}

/// JSON array for scripts.
pub fn to_json(list: &[AccountStatus]) -> String {
    serde_json::to_string_pretty(list).unwrap_or_else(|_| "[]".into())
}

fn time(t: Option<u64>) -> String {
    match t {
        Some(s) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
        )
        .to_string(),
        None => "-".into(),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The human table: one row per account, then the last error of each that has one.
pub fn table(list: &[AccountStatus]) -> String {
    let header = [
        "ACCOUNT",
        "FLOW",
        "TOKEN",
        "VALID UNTIL",
        "REFRESH TOKEN",
        "LAST REFRESH",
        "NEEDS LOGIN",
    ];
    let rows: Vec<[String; 7]> = list
        .iter()
        .map(|s| {
            let valid = match (s.token_present, s.access_token_valid) {
                (false, _) => "-".to_string(),
                (true, true) => time(s.access_token_valid_until),
                (true, _) if s.encrypted_with_client_password => "?".to_string(),
                (true, false) => format!("expired {}", time(s.access_token_valid_until)),
            };
            [
                s.account.clone(),
                s.flow.clone(),
                yes(s.token_present).into(),
                valid,
                yes(s.refresh_token_present).into(),
                time(s.last_refresh),
                yes(s.needs_login).into(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&header.map(String::from));
    for r in &rows {
        out.push_str(&line(r));
    }
    for s in list {
        if s.encrypted_with_client_password {
            out.push_str(&format!(
                "{}: encrypted with client password (readable only while that client logs in)\n",
                s.account
            ));
        }
        if s.refresh_token_expiring {
            out.push_str(&format!(
                "{}: refresh token expiring at {}: run `oauth-mail-proxy login {}` before then\n",
                s.account,
                time(s.refresh_token_valid_until),
                s.account
            ));
        }
        if let Some(e) = &s.last_error {
            out.push_str(&format!("{}: last error: {e}\n", s.account));
        }
        if s.needs_login {
            out.push_str(&format!(
                "{}: run `oauth-mail-proxy login {}`\n",
                s.account, s.account
            ));
        }
    }
    out
}
