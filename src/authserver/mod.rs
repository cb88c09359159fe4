//! A small but real OAuth 2.0 authorization server, for the tests and the demo.
//!
//! It speaks HTTP/1.1 on loopback and implements what the proxy and Dovecot need:
//!
//! * `GET /authorize`: authorization code grant with mandatory PKCE S256
//!   (RFC 6749 §4.1, RFC 7636). Every request is auto-approved as `login_hint`, or
//!   as [`AuthServerConfig::default_user`]; [`AuthServer::set_deny`] makes it answer
//!   `error=access_denied` instead.
//! * `POST /token`: `authorization_code`, `refresh_token` (with rotation) and
//!   `client_credentials`; client authentication by HTTP Basic or body parameters
//!   (RFC 6749 §2.3.1); errors as RFC 6749 §5.2 JSON.
//! * `POST /device` and `GET /device/verify`: the device authorization grant
//!   (RFC 8628), approved from tests with [`AuthServer::approve_device`] or in a
//!   browser at `/device/verify`; the token endpoint's device-code grant answers
//!   `authorization_pending`, `slow_down`, `expired_token` and `access_denied`.
//! * `client_credentials` tokens introspect as the request's `login_hint` (a test
//!   extension) or [`AuthServerConfig::default_user`]: app-only tokens stand for the
//!   mailbox the proxy names upstream.
//! * [`AuthServer::set_token_fault`] makes `/token` fail on purpose ([`TokenFault`]:
//!   5xx, 429 with `Retry-After`, HTML, JSON without a token, slow, hanging).
//! * `POST /revoke` (RFC 7009): revoking a refresh token revokes its family.
//! * `POST /introspect` (RFC 7662) for the introspection client, plus the GET
//!   variants used by Dovecot's other `introspection_mode`s.
//!
//! Tokens are random and kept only as hashes; token values are never logged.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
//! let server = AuthServer::start("127.0.0.1:0".parse().unwrap(), AuthServerConfig::generated()).await?;
//! let (access, _refresh) = server.mint_tokens("alice@example.com");
//! # let _ = access;
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! [`AuthServer`] (here) starts and stops the server and names its endpoints; its
//! test knobs and counters are in `control.rs`, the HTTP handlers in `handlers.rs`
//! and `device.rs`, the token memory in `store.rs`.

mod config;
mod control;
mod device;
mod error;
mod fault;
mod handlers;
mod jwt;
mod params;
mod revoke;
mod store;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::AuthServerConfig;
pub use error::OAuthError;
pub use fault::TokenFault;
pub use params::s256_challenge;

use store::Store;

/// How long [`AuthServer::shutdown`] waits for open connections before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// State shared by the handlers and the [`AuthServer`] handle.
pub(crate) struct Shared {
    cfg: AuthServerConfig,
    store: Mutex<Store>,
    deny: AtomicBool,
    /// Set by [`AuthServer::set_token_fault`]: how `/token` misbehaves.
    token_fault: Mutex<Option<TokenFault>>,
    token_requests: AtomicU64,
    /// Successful (client-authenticated) `/revoke` requests.
    revocations: AtomicU64,
    grants: Mutex<HashMap<&'static str, u64>>,
    devices: Mutex<device::Devices>,
    /// The query parameters of every `/authorize` request, oldest first.
    authorize_log: Mutex<Vec<Vec<(String, String)>>>,
    /// The JWT bearer grant's key and expected claims, once configured.
    jwt: Mutex<Option<jwt::JwtVerifier>>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn token_fault(&self) -> Option<TokenFault> {
        *self
            .token_fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn devices(&self) -> MutexGuard<'_, device::Devices> {
        self.devices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log_authorize(&self, query: &str) {
        let pairs = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut log = self
            .authorize_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if log.len() >= 1000 {
            log.remove(0);
        }
        log.push(pairs);
    }

    fn count_grant(&self, grant_type: &'static str) {
        let mut g = self.grants.lock().unwrap_or_else(PoisonError::into_inner);
        *g.entry(grant_type).or_default() += 1;
    }
}

/// A running authorization server. Dropping it stops the server in the background;
/// [`AuthServer::shutdown`] stops it and waits.
pub struct AuthServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl AuthServer {
    /// Binds `bind` (port 0 picks a free port) and serves until shutdown.
    pub async fn start(bind: SocketAddr, cfg: AuthServerConfig) -> std::io::Result<AuthServer> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(cfg.token_lifetime)),
            cfg,
            deny: AtomicBool::new(false),
            token_fault: Mutex::new(None),
            token_requests: AtomicU64::new(0),
            revocations: AtomicU64::new(0),
            grants: Mutex::new(HashMap::new()),
            devices: Mutex::new(device::Devices::default()),
            authorize_log: Mutex::new(Vec::new()),
            jwt: Mutex::new(None),
        });
        let cancel = CancellationToken::new();
        let app = handlers::router(shared.clone());
        let stop = cancel.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(error = %e, "test authorization server stopped with an error");
            }
        });
        tracing::info!(%addr, "test authorization server listening");
        Ok(AuthServer {
            addr,
            shared,
            cancel,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration given to [`AuthServer::start`]. `token_lifetime` here is the
    /// initial one; [`AuthServer::set_token_lifetime`] does not change it.
    pub fn config(&self) -> &AuthServerConfig {
        &self.shared.cfg
    }

    /// `http://HOST:PORT` with loopback in place of an unspecified bind address.
    fn base_url(&self) -> String {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(if a.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            });
        }
        format!("http://{a}")
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    pub fn introspect_url(&self) -> String {
        format!("{}/introspect", self.base_url())
    }

    /// The token revocation endpoint (RFC 7009).
    pub fn revocation_url(&self) -> String {
        format!("{}/revoke", self.base_url())
    }

    /// The device authorization endpoint (RFC 8628 §3.1).
    pub fn device_url(&self) -> String {
        format!("{}/device", self.base_url())
    }

    /// Stops accepting, lets open requests finish (at most a few seconds), and waits.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl fmt::Debug for AuthServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServer")
            .field("addr", &self.addr)
            .field("config", &self.shared.cfg)
            .finish()
    }
}
