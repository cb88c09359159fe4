//! The TOML file as written: every key optional, unknown keys refused, values that
//! need validation kept with their span so errors can name the line.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub proxy: Option<Proxy>,
    #[serde(default)]
    pub listener: Vec<Listener>,
    #[serde(default)]
    pub account: Vec<Account>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    pub state_dir: Option<Spanned<String>>,
    pub refresh_margin: Option<Spanned<String>>,
    pub auth_failure_delay: Option<Spanned<String>>,
    pub auth_failure_max_delay: Option<Spanned<String>>,
    pub preauth_timeout: Option<Spanned<String>>,
    pub upstream_timeout: Option<Spanned<String>>,
    pub notify_command: Option<Spanned<String>>,
    pub refresh_token_warning: Option<Spanned<String>>,
    /// Post-login idle timeout (default for every listener).
    pub idle_timeout: Option<Spanned<String>>,
    /// Pre-auth limits: defaults for every listener.
    pub max_line: Option<Spanned<i64>>,
    pub max_literal: Option<Spanned<i64>>,
    pub max_sasl: Option<Spanned<i64>>,
    pub max_auth_failures: Option<Spanned<i64>>,
    pub max_errors: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub max_connections_per_source: Option<Spanned<i64>>,
    /// Admin listener address (off when absent).
    pub admin: Option<Spanned<String>>,
    pub admin_password_hash: Option<Spanned<String>>,
    pub admin_password_hash_env: Option<Spanned<String>>,
    /// How long spliced sessions may go on after SIGTERM/SIGINT.
    pub drain_timeout: Option<Spanned<String>>,
    /// How often to check the config and password files for changes ("0s": never).
    pub watch_config: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub protocol: Spanned<String>,
    pub bind: Option<Spanned<String>>,
    pub tls: Option<Spanned<String>>,
    pub cert: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub upstream: Spanned<OneOrMany>,
    pub upstream_tls: Option<Spanned<String>>,
    pub upstream_ca: Option<Spanned<String>>,
    pub preauth_timeout: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<String>>,
    /// Pre-auth limits overriding `[proxy]`'s.
    pub max_line: Option<Spanned<i64>>,
    pub max_literal: Option<Spanned<i64>>,
    pub max_sasl: Option<Spanned<i64>>,
    pub max_auth_failures: Option<Spanned<i64>>,
    pub max_errors: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub username: Spanned<String>,
    pub password_hash: Option<Spanned<String>>,
    pub password_hash_env: Option<Spanned<String>>,
    /// Template accounts (`username = "*@domain"`): `user:argon2-hash` lines.
    pub password_file: Option<Spanned<String>>,
    /// `flow = "jwt_bearer"`: the Google service-account JSON key file.
    pub service_account_key: Option<Spanned<String>>,
    pub upstream_username: Option<Spanned<String>>,
    pub provider: Option<Spanned<String>>,
    pub tenant: Option<Spanned<String>>,
    pub client_id: Spanned<String>,
    pub client_secret: Option<Spanned<String>>,
    pub client_secret_env: Option<Spanned<String>>,
    pub authorize_url: Option<Spanned<String>>,
    pub token_url: Option<Spanned<String>>,
    pub scopes: Option<Spanned<Vec<String>>>,
    pub flow: Option<Spanned<String>>,
    pub device_authorization_url: Option<Spanned<String>>,
    pub refresh_url: Option<Spanned<String>>,
    pub token_scopes: Option<Spanned<Vec<String>>>,
    pub login_hint: Option<Spanned<String>>,
    pub prompt: Option<Spanned<String>>,
    pub redirect_uri: Option<Spanned<String>>,
    pub revocation_url: Option<Spanned<String>>,
    pub mechanism: Option<Spanned<String>>,
    /// `"state-key"` (default) or `"client-password"`.
    pub encrypt_with: Option<Spanned<String>>,
}

/// `upstream = "host:port"` or `upstream = ["primary:port", "alternate:port"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}
