//! One client connection, end to end: downstream machine → local password check →
//! access token → upstream login → the client's final OK → splice.
//!
//! The flow is the same for every protocol; `protocols.rs` adapts each protocol's
//! pair of machines to it.

mod protocols;
mod smtp_probe;
pub mod upstream;

pub use protocols::{Backend, Frontend, Imap, Pop3, Protocol, Smtp};
pub use smtp_probe::ProbeCache;
pub use upstream::{LoggedIn, LoginError, UpstreamFailure};

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::rustls::ServerConfig;
use tracing::{debug, info, warn};

use crate::accounts::Accounts;
use crate::config::{Account, ListenTls, Listener, Proxy};
use crate::connector::Target;
use crate::driver::{DriveError, Upgrade, drive};
use crate::error::{SessionError, Side};
use crate::metrics::{ListenerMetrics, LoginFailure, Metrics, PreauthReject};
use crate::oauth::{TokenError, TokenManager};
use crate::proto::{CloseReason, Credentials, LocalTls, LoginRejection, UpstreamAuthError};
use crate::stream::Stream;
use crate::trace::{Role, Traced, Tracer};
use secrecy::SecretString;

/// What every session of the process shares.
pub struct Shared {
    pub proxy: Proxy,
    /// Swapped whole on reload (which also drops the old verdict cache).
    pub accounts: std::sync::RwLock<Arc<Accounts>>,
    pub tokens: TokenManager,
    pub throttle: crate::throttle::Throttle,
    /// Cancelled at shutdown: sessions not yet logged in end.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Cancelled when the drain time after shutdown is over: spliced sessions end.
    pub drain: tokio_util::sync::CancellationToken,
    pub metrics: Arc<Metrics>,
}

impl Shared {
    /// The accounts as of now.
    pub fn accounts(&self) -> Arc<Accounts> {
        self.accounts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the accounts (a reload): new logins see only these.
    pub fn set_accounts(&self, accounts: Accounts) {
        *self
            .accounts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(accounts);
    }
}

/// One listener's resolved runtime parts.
pub struct ListenerCtx {
    pub cfg: Listener,
    /// Local TLS (implicit or STARTTLS), when the listener has any.
    pub server_tls: Option<Arc<ServerConfig>>,
    pub upstream: Target,
    /// SMTP listeners: the upstream's extensions, learned once and reused.
    pub smtp_probe: ProbeCache,
    /// This listener's connection and byte counters.
    pub metrics: Arc<ListenerMetrics>,
}

/// A client logged in upstream, ready to be spliced.
struct LoggedInSession {
    down: Stream,
    up: Stream,
    leftover: Vec<u8>,
    up_leftover: Vec<u8>,
}

/// Outcome of the upstream login attempt, from the client's point of view.
enum UpstreamOutcome {
    LoggedIn {
        stream: Stream,
        capabilities: Option<String>,
        leftover: Vec<u8>,
    },
    Rejected(LoginRejection),
}

/// What a downstream machine reports, in protocol-independent terms.
pub enum DownEvent {
    Login(Credentials),
    Done { leftover: Vec<u8> },
}

/// Runs one connection to its end. Errors are logged here; nothing is returned.
pub async fn run<P: Protocol>(
    shared: Arc<Shared>,
    lc: Arc<ListenerCtx>,
    tcp: TcpStream,
    peer: SocketAddr,
) {
    // Pre-auth sessions end at shutdown; spliced ones go on until the drain time is
    // over (`shared.drain`, inside `splice`).
    let login = tokio::select! {
        r = login::<P>(&shared, &lc, tcp, peer) => r,
        _ = shared.shutdown.cancelled() => Err(SessionError::new(Side::Internal, "shutting down")),
    };
    let result = match login {
        Ok(s) => splice_session(&shared, &lc, s, peer).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => debug!(%peer, "session ended"),
        Err(e) => info!(%peer, side = %e.side, "session ended: {}", e.message),
    }
}

async fn splice_session(
    shared: &Shared,
    lc: &ListenerCtx,
    mut s: LoggedInSession,
    peer: SocketAddr,
) -> Result<(), SessionError> {
    let t = crate::splice::splice(
        &mut s.down,
        &mut s.up,
        &s.leftover,
        &s.up_leftover,
        &shared.drain,
        lc.cfg.idle_timeout,
    )
    .await
    .map_err(|e| SessionError::new(Side::Downstream, format!("splice: {e}")))?;
    lc.metrics.add_bytes(t.up, t.down);
    if t.idle_timeout {
        info!(%peer, idle_timeout = ?lc.cfg.idle_timeout, "nothing moved for the idle timeout; closed");
    }
    debug!(%peer, up = t.up, down = t.down, "splice finished");
    Ok(())
}

/// Why a pre-auth connection was dropped: the deadline, or the limit the machine
/// says closed it (`None` for a LOGOUT/QUIT or the client going away).
fn preauth_reason<E: std::fmt::Display>(
    e: &DriveError<E>,
    closed_by: Option<CloseReason>,
) -> Option<PreauthReject> {
    match (e, closed_by) {
        (DriveError::Timeout, _) => Some(PreauthReject::Timeout),
        (DriveError::Closed, Some(r)) => Some(match r {
            CloseReason::LineTooLong => PreauthReject::LineTooLong,
            CloseReason::LiteralTooLong => PreauthReject::LiteralTooLong,
            CloseReason::TooManyErrors => PreauthReject::TooManyErrors,
            CloseReason::TooManyFailures => PreauthReject::TooManyFailures,
        }),
        _ => None,
    }
}

fn down_err<E: std::fmt::Display>(e: DriveError<E>) -> SessionError {
    SessionError::new(Side::Downstream, e)
}

async fn login<P: Protocol>(
    shared: &Shared,
    lc: &ListenerCtx,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Result<LoggedInSession, SessionError> {
    let _ = tcp.set_nodelay(true);
    let deadline = Instant::now() + lc.cfg.preauth_timeout;
    let mut down = Stream::Plain(tcp);
    let upgrade = lc
        .server_tls
        .clone()
        .map_or(Upgrade::Unavailable, Upgrade::Server);
    let local_tls = match lc.cfg.tls {
        ListenTls::None => LocalTls::None,
        ListenTls::StartTls => LocalTls::StartTlsRequired,
        ListenTls::Implicit => {
            let cfg = lc
                .server_tls
                .clone()
                .expect("implicit listener has a TLS config");
            tokio::time::timeout_at(deadline, down.accept_tls(cfg))
                .await
                .map_err(|_| {
                    shared.metrics.preauth_rejected(PreauthReject::Timeout);
                    SessionError::new(Side::Downstream, "TLS handshake timed out")
                })?
                .map_err(|e| {
                    SessionError::new(Side::Downstream, format!("TLS handshake failed: {e}"))
                })?;
            LocalTls::Active
        }
    };
    let mut machine = P::downstream(lc, local_tls, lc.cfg.limits).await;
    let mut tracer = Tracer::start(P::KIND, Role::Server, || format!("client {peer}"));
    let count = |e: DriveError<_>, closed_by: Option<CloseReason>| {
        if let Some(r) = preauth_reason(&e, closed_by) {
            shared.metrics.preauth_rejected(r);
        }
        down_err(e)
    };
    loop {
        let mut traced = Traced::new(&mut machine, tracer.as_mut());
        let event = match drive(&mut down, &mut traced, &upgrade, deadline).await {
            Ok(event) => event,
            Err(e) => return Err(count(e, machine.close_reason())),
        };
        let creds = match P::Down::event(event) {
            DownEvent::Login(creds) => creds,
            DownEvent::Done { .. } => {
                return Err(SessionError::new(
                    Side::Internal,
                    "login finished without a decision",
                ));
            }
        };
        let Some(account) = shared.accounts().authenticate(&creds).await else {
            shared.metrics.login_failed(LoginFailure::BadCredentials);
            let delay = shared
                .throttle
                .failed(peer.ip(), &creds.username, Instant::now());
            warn!(%peer, user = %creds.username, delay_ms = delay.as_millis() as u64, "local authentication failed");
            tokio::time::sleep(delay).await;
            machine.reject(LoginRejection::BadCredentials);
            continue;
        };
        shared.throttle.succeeded(&creds.username);
        // The checked password opens a client-password account's tokens; it lives
        // only until the upstream login is done.
        let password = (account.encrypt_with == crate::config::EncryptWith::ClientPassword)
            .then(|| creds.password.clone());
        drop(creds);
        let ehlo = P::upstream_hint(&machine);
        let outcome = upstream_login::<P>(shared, lc, &account, &ehlo, password.as_ref()).await;
        drop(password);
        match outcome {
            UpstreamOutcome::Rejected(reason) => machine.reject(reason),
            UpstreamOutcome::LoggedIn {
                stream: up,
                capabilities,
                leftover: up_leftover,
            } => {
                shared.metrics.login_ok();
                machine.accept(capabilities.as_deref());
                let mut traced = Traced::new(&mut machine, tracer.as_mut());
                let event = drive(&mut down, &mut traced, &upgrade, deadline)
                    .await
                    .map_err(down_err)?;
                let leftover = match P::Down::event(event) {
                    DownEvent::Done { leftover } => leftover,
                    DownEvent::Login(_) => {
                        return Err(SessionError::new(
                            Side::Internal,
                            "second login after accept",
                        ));
                    }
                };
                info!(%peer, user = %account.username, "logged in; splicing");
                return Ok(LoggedInSession {
                    down,
                    up,
                    leftover,
                    up_leftover,
                });
            }
        }
    }
}

/// Logs in upstream (see [`upstream::login`]) and turns a failure into what the
/// client is told.
async fn upstream_login<P: Protocol>(
    shared: &Shared,
    lc: &ListenerCtx,
    account: &Account,
    hint: &str,
    password: Option<&SecretString>,
) -> UpstreamOutcome {
    let result = upstream::login_with::<P>(
        &shared.tokens,
        &lc.upstream,
        lc.cfg.limits,
        account,
        hint,
        password,
    )
    .await;
    let e = match result {
        Ok(l) => {
            return UpstreamOutcome::LoggedIn {
                stream: l.stream,
                capabilities: l.capabilities,
                leftover: l.leftover,
            };
        }
        Err(e) => e,
    };
    let m = &shared.metrics;
    match &e {
        LoginError::Token(TokenError::NeedsLogin { .. }) => {
            m.login_failed(LoginFailure::NeedsLogin)
        }
        LoginError::Token(_) => m.login_failed(LoginFailure::TokenUnavailable),
        LoginError::Upstream(UpstreamFailure::Auth(_)) => {
            m.upstream_auth_failed();
            m.login_failed(LoginFailure::UpstreamRejected);
        }
        // Connection failures: not a login verdict (the log says what happened).
        LoginError::Upstream(_) => {}
    }
    UpstreamOutcome::Rejected(match e {
        LoginError::Token(TokenError::NeedsLogin { reason, .. }) => {
            warn!(user = %account.username, "token needs re-authorisation: {reason}");
            LoginRejection::NeedsReauthorization(format!(
                "OAuth token for {} needs re-authorisation: run `oauth-mail-proxy login {}`",
                account.username, account.username
            ))
        }
        LoginError::Token(e) => {
            warn!(user = %account.username, "cannot get an access token: {e}");
            LoginRejection::Unavailable(
                "Cannot obtain an OAuth access token right now; try again later".into(),
            )
        }
        LoginError::Upstream(UpstreamFailure::Auth(UpstreamAuthError::TokenRejected {
            status,
        })) => {
            warn!(user = %account.username, %status, "upstream rejected a fresh access token");
            LoginRejection::NeedsReauthorization(format!(
                "The server rejected the OAuth token for {}: re-authorise with `oauth-mail-proxy login {}`",
                account.username, account.username
            ))
        }
        LoginError::Upstream(e) => {
            warn!(user = %account.username, "upstream login failed: {e}");
            LoginRejection::Unavailable("The mail server is unavailable; try again later".into())
        }
    })
}
