//! One client connection, end to end: downstream machine → local password check →
//! access token → upstream login → the client's final OK → splice.
//!
//! The flow is the same for every protocol; [`protocols`] adapts each protocol's
//! pair of machines to it.

mod protocols;
mod smtp_probe;

pub use protocols::{Backend, Frontend, Imap, Pop3, Protocol, Smtp};
pub use smtp_probe::ProbeCache;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::rustls::ServerConfig;
use tracing::{debug, info, warn};

use crate::accounts::Accounts;
use crate::config::{Account, ListenTls, Listener, Proxy};
use crate::connector::{self, Target};
use crate::driver::{DriveError, Upgrade, drive};
use crate::error::{SessionError, Side};
use crate::oauth::{TokenError, TokenManager};
use crate::proto::{
    Credentials, Limits, LocalTls, LoginRejection, UpstreamAuthError, UpstreamLogin, UpstreamTls,
};
use crate::stream::Stream;

/// What every session of the process shares.
pub struct Shared {
    pub proxy: Proxy,
    pub accounts: Accounts,
    pub tokens: TokenManager,
    pub limits: Limits,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// One listener's resolved runtime parts.
pub struct ListenerCtx {
    pub cfg: Listener,
    /// Local TLS (implicit or STARTTLS), when the listener has any.
    pub server_tls: Option<Arc<ServerConfig>>,
    pub upstream: Target,
    /// SMTP listeners: the upstream's extensions, learned once and reused.
    pub smtp_probe: ProbeCache,
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
    let session = session::<P>(&shared, &lc, tcp, peer);
    let result = tokio::select! {
        r = session => r,
        // Pre-auth sessions end at shutdown; spliced ones end inside `splice`.
        _ = shared.shutdown.cancelled() => Err(SessionError::new(Side::Internal, "shutting down")),
    };
    match result {
        Ok(()) => debug!(%peer, "session ended"),
        Err(e) => info!(%peer, side = %e.side, "session ended: {}", e.message),
    }
}

fn down_err<E: std::fmt::Display>(e: DriveError<E>) -> SessionError {
    SessionError::new(Side::Downstream, e)
}

async fn session<P: Protocol>(
    shared: &Shared,
    lc: &ListenerCtx,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Result<(), SessionError> {
    let _ = tcp.set_nodelay(true);
    let deadline = Instant::now() + shared.proxy.preauth_timeout;
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
                .map_err(|_| SessionError::new(Side::Downstream, "TLS handshake timed out"))?
                .map_err(|e| {
                    SessionError::new(Side::Downstream, format!("TLS handshake failed: {e}"))
                })?;
            LocalTls::Active
        }
    };
    let mut machine = P::downstream(lc, local_tls, shared.limits).await;
    loop {
        let event = drive(&mut down, &mut machine, &upgrade, deadline)
            .await
            .map_err(down_err)?;
        let creds = match P::Down::event(event) {
            DownEvent::Login(creds) => creds,
            DownEvent::Done { .. } => {
                return Err(SessionError::new(
                    Side::Internal,
                    "login finished without a decision",
                ));
            }
        };
        let Some(account) = shared.accounts.authenticate(&creds).await else {
            warn!(%peer, user = %creds.username, "local authentication failed");
            tokio::time::sleep(shared.proxy.auth_failure_delay).await;
            machine.reject(LoginRejection::BadCredentials);
            continue;
        };
        drop(creds);
        let ehlo = P::upstream_hint(&machine);
        match upstream_login::<P>(shared, lc, &account, &ehlo).await {
            UpstreamOutcome::Rejected(reason) => machine.reject(reason),
            UpstreamOutcome::LoggedIn {
                stream: mut up,
                capabilities,
                leftover: up_leftover,
            } => {
                machine.accept(capabilities.as_deref());
                let event = drive(&mut down, &mut machine, &upgrade, deadline)
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
                let t = crate::splice::splice(
                    &mut down,
                    &mut up,
                    &leftover,
                    &up_leftover,
                    &shared.shutdown,
                )
                .await
                .map_err(|e| SessionError::new(Side::Downstream, format!("splice: {e}")))?;
                debug!(%peer, up = t.up, down = t.down, "splice finished");
                return Ok(());
            }
        }
    }
}

/// Gets a token and logs in upstream; a token the server rejects is dropped and a
/// fresh one tried once, so a token revoked early does not need a new `login`.
async fn upstream_login<P: Protocol>(
    shared: &Shared,
    lc: &ListenerCtx,
    account: &Account,
    hint: &str,
) -> UpstreamOutcome {
    let mut retried = false;
    loop {
        let token = match shared.tokens.access_token(account).await {
            Ok(t) => t,
            Err(TokenError::NeedsLogin { reason, .. }) => {
                warn!(user = %account.username, "token needs re-authorisation: {reason}");
                return UpstreamOutcome::Rejected(LoginRejection::NeedsReauthorization(format!(
                    "OAuth token for {} needs re-authorisation: run `oauth-mail-proxy login {}`",
                    account.username, account.username
                )));
            }
            Err(e) => {
                warn!(user = %account.username, "cannot get an access token: {e}");
                return UpstreamOutcome::Rejected(LoginRejection::Unavailable(
                    "Cannot obtain an OAuth access token right now; try again later".into(),
                ));
            }
        };
        match upstream::<P>(shared, &lc.upstream, account, &token, hint).await {
            Ok((stream, capabilities, leftover)) => {
                return UpstreamOutcome::LoggedIn {
                    stream,
                    capabilities,
                    leftover,
                };
            }
            Err(UpstreamFailure::Auth(UpstreamAuthError::TokenRejected { status })) if !retried => {
                warn!(user = %account.username, %status, "upstream rejected the access token; refreshing once");
                shared.tokens.invalidate(&account.username, &token);
                retried = true;
            }
            Err(UpstreamFailure::Auth(UpstreamAuthError::TokenRejected { status })) => {
                warn!(user = %account.username, %status, "upstream rejected a fresh access token");
                return UpstreamOutcome::Rejected(LoginRejection::NeedsReauthorization(format!(
                    "The server rejected the OAuth token for {}: re-authorise with `oauth-mail-proxy login {}`",
                    account.username, account.username
                )));
            }
            Err(e) => {
                warn!(user = %account.username, "upstream login failed: {e}");
                return UpstreamOutcome::Rejected(LoginRejection::Unavailable(
                    "The mail server is unavailable; try again later".into(),
                ));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum UpstreamFailure {
    #[error("{0}")]
    Connect(#[from] connector::ConnectError),
    #[error("{0}")]
    Auth(UpstreamAuthError),
    #[error("{0}")]
    Other(String),
}

/// Connects (trying alternates) and logs in with `token`.
async fn upstream<P: Protocol>(
    shared: &Shared,
    target: &Target,
    account: &Account,
    token: &secrecy::SecretString,
    hint: &str,
) -> Result<(Stream, Option<String>, Vec<u8>), UpstreamFailure> {
    let (mut stream, server) = connector::connect(target).await?;
    let upgrade = match target.tls {
        UpstreamTls::StartTls => Upgrade::Client(
            target.client_config.clone(),
            connector::server_name(server)?,
        ),
        _ => Upgrade::Unavailable,
    };
    debug!(upstream = %server, user = %account.username, "connected upstream");
    let login = UpstreamLogin {
        tls: target.tls,
        mechanism: account.mechanism,
        username: account.upstream_username.clone(),
        access_token: token.clone(),
        host: server.host.clone(),
        port: server.port,
    };
    let mut machine = P::upstream(login, shared.limits, hint);
    // Each step (greeting, STARTTLS, capability, auth) gets the step timeout; the
    // whole login gets four of them.
    let deadline = Instant::now() + target.timeout * 4;
    match drive(&mut stream, &mut machine, &upgrade, deadline).await {
        Ok(event) => {
            let (capabilities, leftover) = P::Up::logged_in(event);
            Ok((stream, capabilities, leftover))
        }
        Err(DriveError::Machine(e)) => match P::Up::auth_error(&e) {
            Some(a) => Err(UpstreamFailure::Auth(a.clone())),
            None => Err(UpstreamFailure::Other(e.to_string())),
        },
        Err(e) => Err(UpstreamFailure::Other(e.to_string())),
    }
}
