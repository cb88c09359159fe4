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
use crate::admin::{AdminSettings, AdminState};
use crate::config::{Config, ListenTls, Listener, Protocol};
use crate::conn_limit::{RefusalLog, SourceLimiter, busy_reply};
use crate::connector::Target;
use crate::metrics::{Metrics, PreauthReject};
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
    config: Arc<Config>,
    listeners: Vec<(TcpListener, Arc<ListenerCtx>)>,
    admin: Option<(TcpListener, AdminState)>,
}

impl Server {
    /// Builds everything the sessions share and binds every listener (and the admin
    /// listener, when configured). Fails before accepting anything when a port,
    /// certificate or the token store is unusable.
    pub async fn bind(config: Config) -> Result<Server, ServeError> {
        let store = TokenStore::open(&config.proxy.state_dir)
            .map_err(|e| ServeError::Store(e.to_string()))?;
        store
            .check_permissions()
            .map_err(|e| ServeError::Store(e.to_string()))?;
        let http =
            crate::oauth::client::http_client().map_err(|e| ServeError::Http(e.to_string()))?;
        let metrics = Arc::new(Metrics::new());
        let shared = Arc::new(Shared {
            proxy: config.proxy.clone(),
            accounts: std::sync::RwLock::new(Arc::new(accounts_of(&config))),
            tokens: crate::ops::notify::attach(
                TokenManager::new(store, http, config.proxy.refresh_margin)
                    .with_refresh_token_warning(config.proxy.refresh_token_warning)
                    .with_refresh_observer({
                        let m = metrics.clone();
                        Arc::new(move |ok| m.refresh(ok))
                    }),
                &config.proxy,
            )
            .0,
            throttle: crate::throttle::Throttle::new(
                config.proxy.auth_failure_delay,
                config.proxy.auth_failure_max_delay,
            ),
            shutdown: CancellationToken::new(),
            drain: CancellationToken::new(),
            metrics: metrics.clone(),
        });
        let mut listeners = Vec::new();
        for l in &config.listeners {
            listeners.push(bind_listener(&config, l, &metrics).await?);
        }
        let config = Arc::new(config);
        let admin = match &config.proxy.admin {
            None => None,
            Some(a) => {
                let tcp = TcpListener::bind(a.bind)
                    .await
                    .map_err(|source| ServeError::Bind {
                        addr: a.bind,
                        source,
                    })?;
                let settings = AdminSettings {
                    bind: a.bind,
                    // Without a hash no password matches: only the probes answer.
                    password_hash: a.password_hash.clone().unwrap_or_default(),
                };
                let state =
                    AdminState::new(&settings, config.clone(), shared.tokens.clone(), metrics);
                Some((tcp, state))
            }
        };
        Ok(Server {
            shared,
            config,
            listeners,
            admin,
        })
    }

    /// The bound addresses, in config order (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// The admin listener's bound address, when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// Cancelling this closes spliced sessions at once (e.g. a second SIGTERM while
    /// draining) instead of after `drain_timeout`.
    pub fn force_close_token(&self) -> CancellationToken {
        self.shared.drain.clone()
    }

    /// The process's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Accepts connections until `shutdown` is cancelled, then drains (see
    /// [`run_with_reloads`](Self::run_with_reloads)).
    pub async fn run(self, shutdown: CancellationToken) {
        let (_keep, reloads) = tokio::sync::mpsc::unbounded_channel();
        self.run_with_reloads(shutdown, reloads).await;
    }

    /// Accepts connections until `shutdown` is cancelled; each message on `reloads`
    /// re-reads the config file ([`crate::reload`]). At shutdown the listeners close,
    /// sessions not logged in end, and spliced sessions may go on for `drain_timeout`
    /// before they are closed; returns when every session task has finished.
    pub async fn run_with_reloads(
        self,
        shutdown: CancellationToken,
        mut reloads: tokio::sync::mpsc::UnboundedReceiver<()>,
    ) {
        let tracker = TaskTracker::new();
        let caps = Arc::new(Caps {
            global: Arc::new(Semaphore::new(self.shared.proxy.max_connections)),
            per_source: SourceLimiter::new(self.shared.proxy.max_connections_per_source),
            log: RefusalLog::new(REFUSAL_LOG_INTERVAL),
        });
        let mut running = crate::reload::Running::new(
            self.shared.clone(),
            caps,
            tracker.clone(),
            shutdown.clone(),
            self.config.clone(),
        );
        for (tcp, ctx) in self.listeners {
            running.start(tcp, ctx);
        }
        let admin_stop = CancellationToken::new();
        let admin_state = self.admin.map(|(tcp, state)| {
            let stop = admin_stop.clone();
            let st = state.clone();
            let task = tokio::spawn(async move {
                if let Err(e) = crate::admin::serve(tcp, st, stop).await {
                    error!("admin listener: {e}");
                }
            });
            (state, task)
        });
        if let Some((state, _)) = &admin_state {
            state.set_ready(true);
            running.set_admin(state.clone());
        }
        let mut watch = crate::config_watch::Watch::new(running.config());
        let mut ticks = self.shared.proxy.watch_config.map(|every| {
            let mut t = tokio::time::interval(every);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            let tick = async {
                match &mut ticks {
                    Some(t) => t.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(()) = reloads.recv() => {
                    watch.mark();
                    running.reload().await;
                }
                _ = tick => {
                    if !watch.poll() {
                        continue;
                    }
                    info!("a configuration file changed");
                    running.reload().await;
                }
            }
            watch.retarget(running.config());
        }
        if let Some((state, _)) = &admin_state {
            state.set_ready(false);
        }
        self.shared.shutdown.cancel();
        tracker.close();
        let drain = self.shared.proxy.drain_timeout;
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            warn!(drain_timeout = ?drain, "drain time over; closing the remaining sessions");
            self.shared.drain.cancel();
            tracker.wait().await;
        }
        self.shared.drain.cancel();
        admin_stop.cancel();
        if let Some((_, task)) = admin_state {
            let _ = task.await;
        }
        info!("all sessions ended");
    }
}

/// The accounts of `config`, with the state directory's app passwords.
pub(crate) fn accounts_of(config: &Config) -> Accounts {
    Accounts::new(config.accounts.clone()).with_app_passwords(
        crate::app_passwords::AppPasswords::in_state_dir(&config.proxy.state_dir),
    )
}

/// Pending connections the kernel queues per listener before `accept`. The std/tokio
/// default (128) overflows under a burst of connects, and Linux then drops them
/// silently; the kernel caps this at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// Binds a listening socket with [`BACKLOG`] (`SO_REUSEADDR` as std does).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Builds one listener's runtime parts and binds it.
pub(crate) async fn bind_listener(
    config: &Config,
    l: &Listener,
    metrics: &Metrics,
) -> Result<(TcpListener, Arc<ListenerCtx>), ServeError> {
    let tls_err = |source| ServeError::Tls {
        addr: l.bind,
        source,
    };
    let server_tls = match l.tls {
        ListenTls::None => None,
        _ => {
            let (cert, key) = match &l.cert {
                Some(pair) => pair.clone(),
                None => crate::tls::ensure_generated(&config.proxy.state_dir).map_err(tls_err)?,
            };
            Some(crate::tls::server_config(&cert, &key).map_err(tls_err)?)
        }
    };
    let upstream = Target {
        servers: l.upstream.servers.clone(),
        tls: l.upstream.tls,
        client_config: crate::tls::client_config(l.upstream.ca.as_deref()).map_err(tls_err)?,
        timeout: config.proxy.upstream_timeout,
    };
    let tcp = listen(l.bind).map_err(|source| ServeError::Bind {
        addr: l.bind,
        source,
    })?;
    let addr = tcp.local_addr().unwrap_or(l.bind);
    let ctx = ListenerCtx {
        cfg: l.clone(),
        server_tls,
        upstream,
        smtp_probe: Default::default(),
        metrics: metrics.listener(&format!("{} {addr}", l.protocol.name())),
    };
    Ok((tcp, Arc::new(ctx)))
}

/// The connection caps all listeners share.
pub(crate) struct Caps {
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
    metrics: &Metrics,
    cap: &str,
) {
    metrics.preauth_rejected(PreauthReject::Busy);
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

/// Accepts on `tcp` until `stop` is cancelled (then the socket is closed).
pub(crate) async fn accept_loop(
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
            refuse(sock, peer, &ctx, &caps, &shared.metrics, "max_connections");
            continue;
        };
        let Some(source) = caps.per_source.try_acquire(peer.ip()) else {
            drop(permit);
            refuse(
                sock,
                peer,
                &ctx,
                &caps,
                &shared.metrics,
                "max_connections_per_source",
            );
            continue;
        };
        let shared = shared.clone();
        let ctx = ctx.clone();
        let open = ctx.metrics.connection_opened();
        let run = async move {
            match ctx.cfg.protocol {
                Protocol::Imap => session::run::<session::Imap>(shared, ctx, sock, peer).await,
                Protocol::Pop3 => session::run::<session::Pop3>(shared, ctx, sock, peer).await,
                Protocol::Smtp => session::run::<session::Smtp>(shared, ctx, sock, peer).await,
            }
            drop((permit, source, open));
        };
        tracker.spawn(run);
    }
}

/// Binds and runs until `shutdown` is cancelled.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<(), ServeError> {
    Server::bind(config).await?.run(shutdown).await;
    Ok(())
}
