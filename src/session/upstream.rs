//! Logging in upstream, for a client session and for `verify` alike: an access token
//! from the [`TokenManager`], a connection (alternates tried in order), the protocol's
//! upstream machine, and one retry with a fresh token when the server rejects it (so a
//! token revoked early does not need a new `login`).

use secrecy::SecretString;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::Protocol;
use super::protocols::Backend;
use crate::config::{Account, ServerAddr};
use crate::connector::{self, ConnectError, Target};
use crate::driver::{DriveError, Upgrade, drive};
use crate::oauth::{TokenError, TokenManager};
use crate::proto::{Limits, UpstreamAuthError, UpstreamLogin, UpstreamTls};
use crate::stream::Stream;

/// An upstream connection that has logged in.
pub struct LoggedIn {
    pub stream: Stream,
    /// The server (of the target's list) that answered.
    pub server: ServerAddr,
    /// The server's post-login capabilities, when it sent them.
    pub capabilities: Option<String>,
    /// Bytes the server sent after its final login reply.
    pub leftover: Vec<u8>,
}

/// Why one connect + login attempt failed. `Display` never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamFailure {
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Auth(UpstreamAuthError),
    #[error("{0}")]
    Other(String),
}

/// Why [`login`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// No access token could be had.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The upstream step failed (after the one retry when the token was rejected).
    #[error("{0}")]
    Upstream(UpstreamFailure),
}

/// Gets `account`'s access token from `tokens` and logs in to `target` with the
/// protocol `P` (`hint`: see [`Protocol::upstream_hint`]). A token the server rejects
/// is invalidated and a fresh one tried once.
pub async fn login<P: Protocol>(
    tokens: &TokenManager,
    target: &Target,
    limits: Limits,
    account: &Account,
    hint: &str,
) -> Result<LoggedIn, LoginError> {
    login_with::<P>(tokens, target, limits, account, hint, None).await
}

/// [`login`] with the client's local password, which opens the tokens of an
/// `encrypt_with = "client-password"` account (see [`TokenManager::access_token_with`]).
pub async fn login_with<P: Protocol>(
    tokens: &TokenManager,
    target: &Target,
    limits: Limits,
    account: &Account,
    hint: &str,
    password: Option<&SecretString>,
) -> Result<LoggedIn, LoginError> {
    let mut retried = false;
    loop {
        let token = tokens.access_token_with(account, password).await?;
        match connect_and_login::<P>(target, limits, account, &token, hint).await {
            Ok(l) => return Ok(l),
            Err(UpstreamFailure::Auth(UpstreamAuthError::TokenRejected { status })) if !retried => {
                warn!(user = %account.username, %status, "upstream rejected the access token; refreshing once");
                tokens.invalidate(&account.username, &token);
                retried = true;
            }
            Err(e) => return Err(LoginError::Upstream(e)),
        }
    }
}

/// Connects (trying alternates) and logs in with `token`.
pub async fn connect_and_login<P: Protocol>(
    target: &Target,
    limits: Limits,
    account: &Account,
    token: &SecretString,
    hint: &str,
) -> Result<LoggedIn, UpstreamFailure> {
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
    let mut machine = P::upstream(login, limits, hint);
    // Each step (greeting, STARTTLS, capability, auth) gets the step timeout; the
    // whole login gets four of them.
    let deadline = Instant::now() + target.timeout * 4;
    match drive(&mut stream, &mut machine, &upgrade, deadline).await {
        Ok(event) => {
            let (capabilities, leftover) = P::Up::logged_in(event);
            Ok(LoggedIn {
                stream,
                server: server.clone(),
                capabilities,
                leftover,
            })
        }
        Err(DriveError::Machine(e)) => match P::Up::auth_error(&e) {
            Some(a) => Err(UpstreamFailure::Auth(a.clone())),
            None => Err(UpstreamFailure::Other(e.to_string())),
        },
        Err(e) => Err(UpstreamFailure::Other(e.to_string())),
    }
}
