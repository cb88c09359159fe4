//! The configuration model.
//!
//! Two layers (as rathole does it): `raw` mirrors the TOML file with `Option`s,
//! `deny_unknown_fields` and spans; [`Config::load`] validates it into the resolved
//! types below, which have no optional fields left. Every error names the file, the
//! line and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::proto::{Limits, Mechanism, UpstreamTls};

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
    /// Acceptable but risky settings, as `file:line: key: message` lines;
    /// [`Config::load`] logs them at warn (so `check-config` and `serve` show them).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Proxy {
    /// Token store and generated certificates; absolute.
    pub state_dir: PathBuf,
    /// Refresh an access token this long before it expires.
    pub refresh_margin: Duration,
    /// Delay before answering the first failed login; it doubles with each further
    /// failure from the same source or for the same user, up to the max.
    pub auth_failure_delay: Duration,
    pub auth_failure_max_delay: Duration,
    /// Deadline for the whole pre-auth phase of a connection (default of
    /// [`Listener::preauth_timeout`]).
    pub preauth_timeout: Duration,
    /// Post-login idle timeout (default of [`Listener::idle_timeout`]).
    pub idle_timeout: Duration,
    /// Pre-auth limits (default of [`Listener::limits`]).
    pub limits: Limits,
    /// Most client connections open at once, all listeners together.
    pub max_connections: usize,
    /// Most client connections open at once from one IP address; 0 = unlimited.
    pub max_connections_per_source: usize,
    /// Timeout of each upstream step (connect, TLS, greeting, auth).
    pub upstream_timeout: Duration,
    /// Run when an account needs attention (`notify_command`); absolute.
    pub notify_command: Option<PathBuf>,
    /// Warn (log, `status`, `notify_command`) when a refresh token with a known expiry
    /// expires within this long.
    pub refresh_token_warning: Duration,
    /// The admin listener (`admin`), when configured.
    pub admin: Option<AdminConfig>,
    /// After SIGTERM/SIGINT, spliced sessions may go on this long (`drain_timeout`).
    pub drain_timeout: Duration,
    /// How often the config file and the password files are checked for changes,
    /// which then reload like SIGHUP (`watch_config`); `None` when off (`"0s"`).
    pub watch_config: Option<Duration>,
}

/// `[proxy] admin` and `admin_password_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub bind: SocketAddr,
    /// Argon2id PHC string; `None` (loopback only): only the probes are usable.
    pub password_hash: Option<String>,
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
    /// Pre-auth limits: the listener's keys, else `[proxy]`'s, else the defaults.
    pub limits: Limits,
    /// Deadline for the pre-auth phase, TLS handshake included.
    pub preauth_timeout: Duration,
    /// A logged-in (spliced) session with no bytes moving either way for this long
    /// is closed.
    pub idle_timeout: Duration,
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
    /// How tokens are obtained (`flow`).
    pub flow: Flow,
    /// RFC 8628 device authorization endpoint (`flow = "device_code"`).
    pub device_authorization_url: Option<Url>,
    /// Where refresh-token grants go; `token_url` unless configured.
    pub refresh_url: Url,
    /// Scopes sent as `scope` on token requests, when set.
    pub token_scopes: Option<Vec<String>>,
    /// `login_hint` on the authorization request: `None` sends the account's
    /// `upstream_username`, `Some("")` sends none.
    pub login_hint: Option<String>,
    /// `prompt` on the authorization request (e.g. "consent", "select_account").
    pub prompt: Option<String>,
    /// A fixed loopback redirect URI (`http://127.0.0.1:PORT/...`); `None` picks a port.
    pub redirect_uri: Option<Url>,
    /// RFC 7009 revocation endpoint (`revocation_url`; Google preset), for `logout`.
    pub revocation_url: Option<Url>,
}

/// How an account obtains its tokens (`account.flow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flow {
    /// Browser login, PKCE, loopback redirect (or `login --manual`).
    #[default]
    AuthorizationCode,
    /// RFC 8628: a code the user enters on another device.
    DeviceCode,
    /// App-only tokens, no user, no refresh token: fetched again before expiry.
    ClientCredentials,
    /// RFC 7523 JWT bearer grant (service account); see `service_account_key`.
    JwtBearer,
}

impl Flow {
    pub fn name(self) -> &'static str {
        match self {
            Flow::AuthorizationCode => "authorization_code",
            Flow::DeviceCode => "device_code",
            Flow::ClientCredentials => "client_credentials",
            Flow::JwtBearer => "jwt_bearer",
        }
    }

    /// True for flows that involve a user at `login` (and get refresh tokens).
    pub fn is_interactive(self) -> bool {
        matches!(self, Flow::AuthorizationCode | Flow::DeviceCode)
    }
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
    /// Set on a template account (`username = "*@domain"`): it serves every user of
    /// its password file. [`Config::resolve_account`] turns it into a concrete account.
    pub template: Option<Template>,
    /// `flow = "jwt_bearer"`: the service-account key file (JSON) that signs the JWT.
    pub service_account_key: Option<PathBuf>,
    /// What the account's token record is encrypted with (`encrypt_with`).
    pub encrypt_with: EncryptWith,
}

/// `encrypt_with`: the key of an account's token record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EncryptWith {
    /// The store key (`token.key` in the state directory, or the environment).
    #[default]
    StateKey,
    /// A key derived (Argon2id) from the client's own local password: the proxy can
    /// read and refresh the tokens only while that client logs in.
    ClientPassword,
}

impl EncryptWith {
    pub fn name(self) -> &'static str {
        match self {
            EncryptWith::StateKey => "state-key",
            EncryptWith::ClientPassword => "client-password",
        }
    }
}

/// The users of a template account: `password_file`, read and validated at load.
#[derive(Debug, Clone)]
pub struct Template {
    /// The domain after `*@`, lowercase.
    pub domain: String,
    pub password_file: PathBuf,
    /// User name (as the client sends it) → Argon2id PHC string.
    pub users: std::sync::Arc<std::collections::BTreeMap<String, String>>,
}

impl Account {
    /// True for a template account (`username = "*@domain"`).
    pub fn is_template(&self) -> bool {
        self.template.is_some()
    }

    /// The concrete account of `user` if this template serves it (the user is in its
    /// password file): user name and upstream identity are both `user`, so the
    /// upstream identity is exactly the authenticated name, and tokens are keyed by it.
    pub fn concrete(&self, user: &str) -> Option<Account> {
        let t = self.template.as_ref()?;
        let (_, domain) = user.rsplit_once('@')?;
        if !domain.eq_ignore_ascii_case(&t.domain) {
            return None;
        }
        let hash = t.users.get(user)?;
        Some(Account {
            username: user.to_string(),
            password_hash: hash.clone(),
            upstream_username: user.to_string(),
            template: None,
            ..self.clone()
        })
    }
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
        let config = Config::parse(&text, path)?;
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        Ok(config)
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

    /// The account `username` acts as: an exact account first, else the concrete
    /// account of a template whose password file lists `username`.
    pub fn resolve_account(&self, username: &str) -> Option<Account> {
        resolve_in(&self.accounts, username)
    }
}

/// [`Config::resolve_account`] over a list of accounts (exact names take precedence).
pub fn resolve_in(accounts: &[Account], username: &str) -> Option<Account> {
    if let Some(a) = accounts
        .iter()
        .find(|a| !a.is_template() && a.username == username)
    {
        return Some(a.clone());
    }
    accounts.iter().find_map(|a| a.concrete(username))
}
