//! What an export holds once decrypted: a JSON [`Payload`] with the accounts as
//! resolved (each as a TOML `[[account]]` block, client secret included, from
//! [`account_toml`]) and their token records.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::{Account, Provider};
use crate::oauth::TokenRecord;
use crate::proto::Mechanism;

/// The decrypted content of an export file.
#[derive(Debug, Deserialize)]
pub struct Payload {
    pub version: u32,
    pub created_at: u64,
    pub accounts: Vec<ExportedAccount>,
    pub tokens: Vec<ExportedToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportedAccount {
    pub username: String,
    /// The account as a TOML `[[account]]` block.
    pub toml: String,
}

/// A token record as read from an export.
#[derive(Debug, Deserialize)]
pub struct ExportedToken {
    pub account: String,
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub obtained_at: u64,
    pub last_refresh: Option<u64>,
    pub needs_login: Option<String>,
    #[serde(default)]
    pub refresh_expires_at: Option<u64>,
}

#[derive(Serialize)]
pub(super) struct PayloadOut<'a> {
    pub(super) version: u32,
    pub(super) created_at: u64,
    pub(super) accounts: &'a [ExportedAccount],
    pub(super) tokens: Vec<TokenOut<'a>>,
}

#[derive(Serialize)]
pub(super) struct TokenOut<'a> {
    pub(super) account: &'a str,
    pub(super) access_token: &'a str,
    pub(super) refresh_token: Option<&'a str>,
    pub(super) expires_at: Option<u64>,
    pub(super) scopes: &'a [String],
    pub(super) obtained_at: u64,
    pub(super) last_refresh: Option<u64>,
    pub(super) needs_login: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) refresh_expires_at: Option<u64>,
}

impl ExportedToken {
    pub fn record(&self) -> TokenRecord {
        TokenRecord {
            account: self.account.clone(),
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
            expires_at: self.expires_at,
            scopes: self.scopes.clone(),
            obtained_at: self.obtained_at,
            last_refresh: self.last_refresh,
            needs_login: self.needs_login.clone(),
            refresh_expires_at: self.refresh_expires_at,
        }
    }
}

/// The resolved settings of an account, as written back into TOML.
#[derive(Serialize)]
struct AccountToml<'a> {
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_username: Option<&'a str>,
    provider: &'static str,
    flow: &'static str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    authorize_url: &'a str,
    token_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_url: Option<&'a str>,
    scopes: &'a [String],
    mechanism: &'static str,
}

#[derive(Serialize)]
struct AccountsToml<'a> {
    account: [AccountToml<'a>; 1],
}

/// `account` as a TOML `[[account]]` block (client secret included).
pub fn account_toml(a: &Account) -> String {
    let o = &a.oauth;
    let t = AccountToml {
        username: &a.username,
        password_hash: (a.template.is_none()).then_some(a.password_hash.as_str()),
        password_file: a
            .template
            .as_ref()
            .map(|t| t.password_file.display().to_string()),
        upstream_username: (a.template.is_none() && a.upstream_username != a.username)
            .then_some(a.upstream_username.as_str()),
        provider: match o.provider {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
            Provider::Custom => "custom",
        },
        flow: o.flow.name(),
        client_id: &o.client_id,
        client_secret: o.client_secret.as_ref().map(|s| s.expose_secret()),
        authorize_url: o.authorize_url.as_str(),
        token_url: o.token_url.as_str(),
        revocation_url: o.revocation_url.as_ref().map(|u| u.as_str()),
        scopes: &o.scopes,
        mechanism: match a.mechanism {
            Mechanism::Xoauth2 => "xoauth2",
            Mechanism::Oauthbearer => "oauthbearer",
        },
    };
    toml::to_string(&AccountsToml { account: [t] }).unwrap_or_default()
}
