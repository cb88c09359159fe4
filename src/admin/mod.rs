//! The admin listener: health and readiness probes, Prometheus metrics, a JSON API
//! and a server-rendered token overview page, on one HTTP port.
//!
//! * `GET /healthz`: 200 `ok` while the process serves (no auth).
//! * `GET /readyz`: 200 once [`AdminState::set_ready`] was called, else 503 (no auth).
//! * `GET /metrics`: Prometheus text ([`crate::metrics`]).
//! * `GET /api/accounts`: each account's token status, as `status --json` prints it.
//! * `GET /`: the token overview, or the login form without a session.
//! * `POST /login`, `POST /logout`: start and end a page session.
//! * `POST /accounts/{name}/login|verify|logout`, `POST /export`, `POST /import`: the
//!   page's buttons (`actions`); `GET /oauth/callback`: the end of Re-authenticate.
//! * `POST /api/accounts/{name}/login|verify|logout`, `POST /api/export`,
//!   `POST /api/import`: the same as JSON (`api`); the logic is in `logins`.
//!
//! Auth (`auth.rs`): the admin password as HTTP Basic (any user name) or
//! `Authorization: Bearer`, or the session cookie of the page (HttpOnly,
//! SameSite=Strict; forms also carry an anti-CSRF token).
//!
//! Built on its own: [`serve`] takes a bound listener, an [`AdminState`] and a
//! shutdown token, so the process wires it in next to its mail listeners.

mod actions;
mod api;
mod auth;
mod logins;
mod page;
mod page_actions;
mod routes;
mod sessions;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::{AccountGauge, Metrics};
use crate::oauth::{TokenManager, TokenStatus};
use crate::ops::status::AccountStatus;

pub use auth::{LOGIN_COOKIE, SESSION_COOKIE};
pub use logins::{CALLBACK_PATH, PENDING_TTL};
pub use sessions::SESSION_TTL;

/// Largest request body accepted (forms).
pub const MAX_BODY: usize = 64 * 1024;

/// `[proxy] admin` and `admin_password_hash`.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub bind: SocketAddr,
    /// Argon2id PHC string (from `hash-password`).
    pub password_hash: String,
}

/// What the admin handlers need. Cheap to clone.
#[derive(Clone)]
pub struct AdminState {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<Metrics>,
    ready: AtomicBool,
    config: RwLock<Arc<Config>>,
    tokens: TokenManager,
    auth: auth::Auth,
    http: reqwest::Client,
    logins: logins::Logins,
}

impl AdminState {
    /// Not ready until [`set_ready`](Self::set_ready). Failed admin logins are
    /// throttled with the config's `auth_failure_delay` / `auth_failure_max_delay`.
    pub fn new(
        settings: &AdminSettings,
        config: Arc<Config>,
        tokens: TokenManager,
        metrics: Arc<Metrics>,
    ) -> Self {
        let auth = auth::Auth::new(
            settings.password_hash.clone(),
            config.proxy.auth_failure_delay,
            config.proxy.auth_failure_max_delay,
        );
        AdminState {
            inner: Arc::new(Inner {
                metrics,
                ready: AtomicBool::new(false),
                config: RwLock::new(config),
                tokens,
                auth,
                http: crate::oauth::client::http_client().unwrap_or_default(),
                logins: logins::Logins::default(),
            }),
        }
    }

    /// Ready: listeners bound and config loaded (what `/readyz` reports).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Relaxed)
    }

    /// Replaces the config (after a reload): the accounts shown follow it.
    pub fn set_config(&self, config: Arc<Config>) {
        *self
            .inner
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
    }

    pub fn config(&self) -> Arc<Config> {
        self.inner
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Every account's status (templates expanded per user), with what this process
    /// knows of refresh failures. Reads the token store: call off the async workers.
    pub fn account_statuses(&self) -> Vec<AccountStatus> {
        let config = self.config();
        let now = crate::oauth::outcome::unix_now();
        let accounts = crate::ops::accounts(&config, None).unwrap_or_default();
        accounts
            .iter()
            .map(|a| {
                let st = match self.inner.tokens.status(&a.username) {
                    Ok(st) => AccountStatus::new(a, &st),
                    Err(e) => {
                        let mut s =
                            AccountStatus::new(a, &TokenStatus::from_record(&a.username, None));
                        s.last_error = Some(e.to_string());
                        s
                    }
                };
                st.with_refresh_warning(config.proxy.refresh_token_warning, now)
            })
            .collect()
    }

    /// The metrics text, with the per-account gauges as of now. Reads the token
    /// store: call off the async workers.
    pub fn render_metrics(&self) -> String {
        let gauges: Vec<AccountGauge> = self
            .account_statuses()
            .into_iter()
            .map(|s| AccountGauge {
                expires_at: s.access_token_valid_until.filter(|_| s.token_present),
                needs_login: s.needs_login,
                account: s.account,
            })
            .collect();
        self.inner
            .metrics
            .render_with_accounts(&gauges, crate::oauth::outcome::unix_now())
    }
}

/// Serves the admin endpoints on `listener` until `shutdown` is cancelled (requests
/// in progress are finished first).
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin listener");
    }
    let app = routes::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
