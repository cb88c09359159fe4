//! Binding the listeners and accepting connections: one accept loop per
//! `[[listener]]`, a global and a per-source connection cap (`max_connections`,
//! `max_connections_per_source`: a connection over either is accepted, told "busy"
//! and closed), and graceful shutdown through a
//! `CancellationToken` and a `TaskTracker` (so tests start a whole proxy on port 0 in
//! three lines, mini-redis style).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::accounts::Accounts;
use crate::config::{Config, ListenTls, Protocol};
use crate::conn_limit::{RefusalLog, SourceLimiter, busy_reply};
use crate::connector::Target;
use crate::oauth::{TokenManager, TokenStore};
use crate::session::{self, ListenerCtx, Shared};

/// Default of `max_connections`: most connections open at once, all listeners together.
pub const MAX_CONNECTIONS: usize = 10_000;
/// At most one "too many connections" log line per this interval.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("listener {addr}: {source}")]
    Tls {
        addr: SocketAddr,
        source: crate::tls::TlsError,
    },
    #[error("token store: {0}")]
    Store(String),
    #[error("HTTP client: {0}")]
    Http(String),
}

/// A proxy with its listeners bound, ready to run.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<(TcpListener, Arc<ListenerCtx>)>,
}

impl Server {
    /// Builds everything the sessions share and binds every listener. Fails before
    /// accepting anything when a port, certificate or the token store is unusable.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let store = TokenStore::open(&config.proxy.state_dir)
            .map_err(|e| ServeError::Store(e.to_string()))?;
        store
            .check_permissions()
            .map_err(|e| ServeError::Store(e.to_string()))?;
        let http =
            crate::oauth::client::http_client().map_err(|e| ServeError::Http(e.to_string()))?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            proxy: config.proxy.clone(),
            accounts: Accounts::new(config.accounts.clone()).with_app_passwords(
                crate::app_passwords::AppPasswords::in_state_dir(&config.proxy.state_dir),
            ),
            tokens: crate::ops::notify::attach(
                TokenManager::new(store, http, config.proxy.refresh_margin)
                    .with_refresh_token_warning(config.proxy.refresh_token_warning),
                &config.proxy,
            )
            .0,
            throttle: crate::throttle::Throttle::new(
                config.proxy.auth_failure_delay,
                config.proxy.auth_failure_max_delay,
            ),
            shutdown,
        });
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let tls_err = |source| ServeError::Tls {
                addr: l.bind,
                source,
            };
            let server_tls = match l.tls {
                ListenTls::None => None,
                _ => {
                    let (cert, key) = match &l.cert {
                        Some(pair) => pair.clone(),
                        None => crate::tls::ensure_generated(&config.proxy.state_dir)
                            .map_err(tls_err)?,
                    };
                    Some(crate::tls::server_config(&cert, &key).map_err(tls_err)?)
                }
            };
            let upstream = Target {
                servers: l.upstream.servers.clone(),
                tls: l.upstream.tls,
                client_config: crate::tls::client_config(l.upstream.ca.as_deref())
                    .map_err(tls_err)?,
                timeout: config.proxy.upstream_timeout,
            };
            let tcp = TcpListener::bind(l.bind)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: l.bind,
                    source,
                })?;
            let ctx = ListenerCtx {
                cfg: l.clone(),
                server_tls,
                upstream,
                smtp_probe: Default::default(),
            };
            listeners.push((tcp, Arc::new(ctx)));
        }
        Ok(Server { shared, listeners })
    }

    /// The bound addresses, in config order (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Accepts connections until `shutdown` is cancelled, then closes the listeners,
    /// ends spliced sessions and waits for every session task to finish.
    pub async fn run(self, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let caps = Arc::new(Caps {
            global: Arc::new(Semaphore::new(self.shared.proxy.max_connections)),
            per_source: SourceLimiter::new(self.shared.proxy.max_connections_per_source),
            log: RefusalLog::new(REFUSAL_LOG_INTERVAL),
        });
        for (tcp, ctx) in self.listeners {
            let addr = tcp.local_addr().ok();
            info!(listener = ?addr, protocol = ctx.cfg.protocol.name(), upstream = %ctx.upstream.servers[0], "listening");
            tracker.spawn(accept_loop(
                tcp,
                ctx,
                self.shared.clone(),
                caps.clone(),
                tracker.clone(),
                shutdown.clone(),
            ));
        }
        shutdown.cancelled().await;
        self.shared.shutdown.cancel();
        tracker.close();
        tracker.wait().await;
    }
}

/// The connection caps all listeners share.
struct Caps {
    /// `max_connections` permits; one is held for each session's lifetime.
    global: Arc<Semaphore>,
    per_source: Arc<SourceLimiter>,
    log: RefusalLog,
}

/// Refuses a connection over a cap: a plaintext listener gets the protocol's busy
/// reply (one non-blocking write to the fresh socket, no task), an implicit-TLS
/// listener is just closed.
fn refuse(
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    ctx: &ListenerCtx,
    caps: &Caps,
    cap: &str,
) {
    if let Some(held_back) = caps.log.should_log(std::time::Instant::now()) {
        warn!(source = %peer.ip(), listener = %ctx.cfg.bind, cap, refused_since_last_log = held_back, "too many connections; refusing");
    }
    if ctx.cfg.tls == ListenTls::Implicit {
        return;
    }
    if let Ok(mut std_sock) = sock.into_std() {
        // The send buffer of a new socket is empty: this short write does not block.
        let _ = std_sock.write(busy_reply(ctx.cfg.protocol));
        let _ = std_sock.shutdown(std::net::Shutdown::Write);
    }
}

async fn accept_loop(
    tcp: TcpListener,
    ctx: Arc<ListenerCtx>,
    shared: Arc<Shared>,
    caps: Arc<Caps>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let (sock, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    error!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let Ok(permit) = caps.global.clone().try_acquire_owned() else {
            refuse(sock, peer, &ctx, &caps, "max_connections");
            continue;
        };
        let Some(source) = caps.per_source.try_acquire(peer.ip()) else {
            drop(permit);
            refuse(sock, peer, &ctx, &caps, "max_connections_per_source");
            continue;
        };
        let shared = shared.clone();
        let ctx = ctx.clone();
        let run = async move {
            match ctx.cfg.protocol {
                Protocol::Imap => session::run::<session::Imap>(shared, ctx, sock, peer).await,
                Protocol::Pop3 => session::run::<session::Pop3>(shared, ctx, sock, peer).await,
                Protocol::Smtp => session::run::<session::Smtp>(shared, ctx, sock, peer).await,
            }
            drop((permit, source));
        };
        tracker.spawn(run);
    }
}

/// Binds and runs until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    Server::bind(config).await?.run(shutdown).await;
    Ok(())
}
