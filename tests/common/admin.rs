//! Shared setup of the admin listener tests (`tests/admin*.rs`): token records, a
//! plain IMAP listener spec, `admin::serve` on port 0 with a generated admin
//! password, and an HTTP client that does not follow redirects.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oauth_mail_proxy::admin::{self, AdminSettings, AdminState};
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::metrics::Metrics;
use oauth_mail_proxy::oauth::{TokenManager, TokenRecord};
use oauth_mail_proxy::testkit::mini_imap::{MiniImap, MiniImapConfig};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::proxy::ListenerSpec;

/// The test authorization server, and an XOAUTH2-only IMAP server that accepts its
/// tokens (both on 127.0.0.1, port 0). Installs the crypto provider first.
pub async fn upstreams() -> (AuthServer, MiniImap) {
    super::install_crypto_provider();
    let srv = AuthServer::start(
        "127.0.0.1:0".parse().unwrap(),
        AuthServerConfig::generated(),
    )
    .await
    .unwrap();
    let imap = MiniImap::start(
        "127.0.0.1:0".parse().unwrap(),
        MiniImapConfig {
            validate: srv.validator(),
            // Empty: `verify` then needs no FETCH of header fields, which this
            // small server does not implement.
            messages: Arc::new(Vec::new()),
            tls: None,
        },
    )
    .await
    .unwrap();
    (srv, imap)
}

/// The hash of a random password (for accounts whose password a test never uses).
pub fn random_hash() -> String {
    oauth_mail_proxy::accounts::hash_password(&SecretString::from(
        oauth_mail_proxy::secret::random_token(12),
    ))
}

/// Fresh random tokens for `account`, valid for an hour, with a refresh token.
pub fn token_record(account: &str, needs_login: Option<&str>) -> TokenRecord {
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    TokenRecord {
        account: account.into(),
        access_token: SecretString::from(oauth_mail_proxy::secret::random_token(24)),
        refresh_token: Some(SecretString::from(oauth_mail_proxy::secret::random_token(
            24,
        ))),
        expires_at: Some(now + 3600),
        scopes: vec!["mail".into()],
        obtained_at: now,
        last_refresh: None,
        needs_login: needs_login.map(String::from),
        refresh_expires_at: None,
    }
}

/// A plain IMAP listener in front of the plain `upstream`.
pub fn imap_listener(upstream: SocketAddr) -> ListenerSpec {
    ListenerSpec {
        protocol: "imap",
        alternate_first: None,
        tls: "none",
        upstream,
        upstream_tls: "none",
        upstream_ca: None,
    }
}

/// An HTTP client that does not follow redirects.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `admin::serve` running on 127.0.0.1, port 0.
pub struct AdminServer {
    pub url: String,
    pub password: String,
    pub state: AdminState,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Starts the admin listener for `config` with a generated admin password.
pub async fn serve(config: Config, tokens: TokenManager) -> AdminServer {
    let password = oauth_mail_proxy::secret::random_token(16);
    let settings = AdminSettings {
        bind: "127.0.0.1:0".parse().unwrap(),
        password_hash: oauth_mail_proxy::accounts::hash_password(&SecretString::from(
            password.clone(),
        )),
    };
    let state = AdminState::new(
        &settings,
        Arc::new(config),
        tokens,
        Arc::new(Metrics::new()),
    );
    let listener = tokio::net::TcpListener::bind(settings.bind).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(admin::serve(listener, state.clone(), shutdown.clone()));
    AdminServer {
        url,
        password,
        state,
        shutdown,
        task,
    }
}

impl AdminServer {
    /// Cancels the listener and waits (up to 10 s) for `serve` to return.
    pub async fn stop(
        self,
    ) -> Result<Result<std::io::Result<()>, tokio::task::JoinError>, tokio::time::error::Elapsed>
    {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task).await
    }
}
