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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use error::OAuthError;
pub use fault::TokenFault;
pub use params::s256_challenge;

use handlers::DEFAULT_SCOPE;
use store::Store;

/// How long [`AuthServer::shutdown`] waits for open connections before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of an [`AuthServer`]. `Debug` redacts the secrets.
#[derive(Clone)]
pub struct AuthServerConfig {
    /// The one OAuth client allowed at `/authorize` and `/token`.
    pub client_id: String,
    /// Its secret; empty makes it a public client (`client_id` alone suffices).
    pub client_secret: String,
    /// The client allowed to call `/introspect` (Dovecot's credentials).
    pub introspect_client_id: String,
    pub introspect_client_secret: String,
    /// Lifetime of newly issued access tokens.
    pub token_lifetime: Duration,
    /// User approved at `/authorize` when the request has no `login_hint`.
    pub default_user: String,
    /// Replace the refresh token on each refresh; the old one then stops working.
    pub rotate_refresh_tokens: bool,
}

impl AuthServerConfig {
    /// Fixed client ids, random secrets, one-hour tokens, user `alice@example.com`,
    /// refresh-token rotation on.
    pub fn generated() -> Self {
        Self {
            client_id: "oauth-mail-proxy".to_owned(),
            client_secret: crate::secret::random_token(24),
            introspect_client_id: "dovecot".to_owned(),
            introspect_client_secret: crate::secret::random_token(24),
            token_lifetime: Duration::from_secs(3600),
            default_user: "alice@example.com".to_owned(),
            rotate_refresh_tokens: true,
        }
    }
}

impl fmt::Debug for AuthServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServerConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("introspect_client_id", &self.introspect_client_id)
            .field("introspect_client_secret", &"[REDACTED]")
            .field("token_lifetime", &self.token_lifetime)
            .field("default_user", &self.default_user)
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .finish()
    }
}

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

    /// Successful (client-authenticated) requests to `/revoke`.
    pub fn revocations(&self) -> u64 {
        self.shared.revocations.load(Ordering::SeqCst)
    }

    /// The device authorization endpoint (RFC 8628 §3.1).
    pub fn device_url(&self) -> String {
        format!("{}/device", self.base_url())
    }

    /// Polling interval announced by device authorizations started from now on
    /// (whole seconds; 0 is allowed, for tests).
    pub fn set_device_interval(&self, d: Duration) {
        self.shared.devices().set_interval(d);
    }

    /// Lifetime of device codes issued from now on (default 10 minutes).
    pub fn set_device_lifetime(&self, d: Duration) {
        self.shared.devices().set_lifetime(d);
    }

    /// The next `n` device-code polls are answered `slow_down`.
    pub fn force_device_slow_down(&self, n: u32) {
        self.shared.devices().force_slow_downs(n);
    }

    /// `(polls, slow_downs)`: device-code token requests, and how many of them were
    /// answered `slow_down`.
    pub fn device_polls(&self) -> (u64, u64) {
        self.shared.devices().counts()
    }

    /// Approves a pending device authorization as `user`; false if `user_code` is
    /// unknown, expired or already decided.
    pub fn approve_device(&self, user_code: &str, user: &str) -> bool {
        self.shared.devices().decide(user_code, Some(user))
    }

    /// Denies a pending device authorization (its polls get `access_denied`).
    pub fn deny_device(&self, user_code: &str) -> bool {
        self.shared.devices().decide(user_code, None)
    }

    /// The query parameters of every `/authorize` request so far, oldest first
    /// (`login_hint`, `prompt`, ...: none of them secret).
    pub fn authorize_requests(&self) -> Vec<Vec<(String, String)>> {
        self.shared
            .authorize_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Successful token-endpoint grants of `grant_type` ("authorization_code",
    /// "refresh_token", "client_credentials", "device_code").
    pub fn grants(&self, grant_type: &str) -> u64 {
        let g = self
            .shared
            .grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.get(grant_type).copied().unwrap_or(0)
    }

    /// Every POST to `/token`, successful or not.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// Enables the JWT bearer grant (RFC 7523): assertions must be RS256-signed by
    /// the key whose public half is `pem` ("BEGIN PUBLIC KEY"), issued by `issuer`, for this server's token URL. Tokens issued
    /// introspect as the assertion's `sub`.
    pub fn set_jwt_public_key(&self, pem: &str, issuer: &str) -> Result<(), String> {
        use rustls_pki_types::pem::{PemObject, SectionKind};
        let (kind, der) = <(SectionKind, Vec<u8>)>::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("not a PEM public key: {e}"))?;
        if kind != SectionKind::PublicKey {
            return Err("expected a PUBLIC KEY PEM".into());
        }
        let public_key =
            jwt::rsa_public_key(&der).ok_or_else(|| "not an RSA public key".to_string())?;
        let verifier = jwt::JwtVerifier {
            public_key,
            audience: self.token_url(),
            issuer: issuer.to_owned(),
        };
        let mut slot = self
            .shared
            .jwt
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(verifier);
        Ok(())
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_token_lifetime(&self, d: Duration) {
        self.shared.store().set_lifetime(d);
    }

    /// Announce `refresh_token_expires_in` (this lifetime, not enforced) with every
    /// refresh token issued from now on (as Microsoft does for SPAs); `None`: omit it.
    pub fn set_refresh_token_lifetime(&self, d: Option<Duration>) {
        self.shared.store().set_refresh_lifetime(d);
    }

    /// While set, `/authorize` redirects with `error=access_denied` and
    /// `/device/verify` denies the code it is given.
    pub fn set_deny(&self, deny: bool) {
        self.shared.deny.store(deny, Ordering::SeqCst);
    }

    /// Makes every `POST /token` from now on fail as `fault` says (still counted in
    /// [`AuthServer::token_requests`]); `None` makes it answer normally again. Other
    /// endpoints are unaffected.
    pub fn set_token_fault(&self, fault: Option<TokenFault>) {
        *self
            .shared
            .token_fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Invalidates every refresh and access token of `user`.
    pub fn revoke_user(&self, user: &str) {
        self.shared.store().revoke_user(user);
        tracing::info!(user, "tokens revoked");
    }

    /// Issues `(access_token, refresh_token)` for `user` to the configured client,
    /// without any HTTP exchange (not counted in [`AuthServer::grants`]).
    pub fn mint_tokens(&self, user: &str) -> (String, String) {
        let issued =
            self.shared
                .store()
                .issue_new(user, &self.shared.cfg.client_id, DEFAULT_SCOPE, true);
        let refresh = issued
            .refresh_token
            .expect("issue_new with refresh returns one");
        (issued.access_token, refresh)
    }

    /// A function telling whether an access token is active for a user, as the
    /// introspection endpoint would, without HTTP: for in-process test upstreams.
    pub fn validator(&self) -> crate::testkit::TokenValidator {
        let shared = self.shared.clone();
        Arc::new(move |user: &str, token: &str| {
            shared
                .store()
                .introspect(token)
                .is_some_and(|t| t.user.eq_ignore_ascii_case(user))
        })
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
