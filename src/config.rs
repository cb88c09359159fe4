//! The configuration model.
//!
//! Two layers (as rathole does it): [`raw`] mirrors the TOML file with `Option`s,
//! `deny_unknown_fields` and spans; [`Config::load`] validates it into the resolved
//! types below, which have no optional fields left. Every error names the file, the
//! line and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::proto::{Mechanism, UpstreamTls};

mod raw;
mod resolve;

/// Name of the environment variable that names the config file.
pub const CONFIG_ENV: &str = "OAUTH_MAIL_PROXY_CONFIG";
/// Config file used when neither `--config` nor the environment names one.
pub const DEFAULT_CONFIG: &str = "oauth-mail-proxy.toml";

/// A configuration error, safe to print (it never contains a secret value).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    /// A TOML syntax or type error; toml's message already names the line and key.
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    /// A value that parsed but is not acceptable.
    #[error("{file}:{line}: `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for messages).
    pub file: PathBuf,
    pub proxy: Proxy,
    pub listeners: Vec<Listener>,
    pub accounts: Vec<Account>,
}

#[derive(Debug, Clone)]
pub struct Proxy {
    /// Token store and generated certificates; absolute.
    pub state_dir: PathBuf,
    /// Refresh an access token this long before it expires.
    pub refresh_margin: Duration,
    /// Delay before answering a failed login.
    pub auth_failure_delay: Duration,
    /// Deadline for the whole pre-auth phase of a connection.
    pub preauth_timeout: Duration,
    /// Timeout of each upstream step (connect, TLS, greeting, auth).
    pub upstream_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Imap,
    Pop3,
    Smtp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Smtp => "smtp",
        }
    }
}

/// TLS on the local (client-facing) side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenTls {
    None,
    StartTls,
    Implicit,
}

#[derive(Debug, Clone)]
pub struct Listener {
    pub protocol: Protocol,
    pub bind: SocketAddr,
    pub tls: ListenTls,
    /// Local certificate and key (PEM); `None` when a self-signed pair is to be
    /// generated into `state_dir` (only meaningful when `tls` is not `None`).
    pub cert: Option<(PathBuf, PathBuf)>,
    pub upstream: Upstream,
}

/// One upstream server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// The server, then alternates tried in order when a connection fails.
    pub servers: Vec<ServerAddr>,
    pub tls: UpstreamTls,
    /// Extra trust anchor added to the system roots.
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    Microsoft,
    Custom,
}

/// The OAuth 2.0 client an account logs in with.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub authorize_url: Url,
    pub token_url: Url,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Account {
    /// What the client sends as its user name.
    pub username: String,
    /// Argon2id PHC string for the local password.
    pub password_hash: String,
    /// Identity sent upstream.
    pub upstream_username: String,
    pub mechanism: Mechanism,
    pub oauth: OAuthClient,
}

impl Config {
    /// Which file to load: `--config`, then `$OAUTH_MAIL_PROXY_CONFIG`, then
    /// `./oauth-mail-proxy.toml`.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        match std::env::var_os(CONFIG_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from(DEFAULT_CONFIG),
        }
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and validates config text; `path` names it in errors and anchors the
    /// relative paths in it.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        resolve::resolve(text, path)
    }

    /// The account whose local user name is `username` (exact match).
    pub fn account(&self, username: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.username == username)
    }
}
