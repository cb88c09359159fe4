//! Logging in upstream, for a client session and for `verify` alike: an access token
//! from the [`TokenManager`], a connection (alternates tried in order), the protocol's
//! upstream machine, and one retry with a fresh token when the server rejects it (so a
//! token revoked early does not need a new `login`).

use std::time::Duration;

use secrecy::SecretString;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::Protocol;
use super::protocols::Backend;
use crate::config::{Account, ServerAddr};
use crate::connector::{self, ConnectError, Target};
use crate::driver::{DriveError, Machine, Upgrade, drive};
use crate::oauth::{TokenError, TokenManager};
use crate::proto::{Interrupt, Io, Limits, UpstreamAuthError, UpstreamLogin, UpstreamTls};
use crate::stream::Stream;
use crate::trace::{Role, Traced, Tracer};

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
    let mut tracer = Tracer::start(P::KIND, Role::Client, || format!("upstream {server}"));
    let traced = Traced::new(&mut machine, tracer.as_mut());
    match drive_stepwise(&mut stream, traced, &upgrade, target.timeout).await {
        Ok(event) => {
            let (capabilities, leftover) = P::Up::logged_in(event);
            Ok(LoggedIn {
                stream,
                server: server.clone(),
                capabilities,
                leftover,
            })
        }
        Err((_, DriveError::Machine(e))) if P::Up::auth_error(&e).is_some() => {
            let auth = P::Up::auth_error(&e).cloned().expect("checked above");
            Err(UpstreamFailure::Auth(auth))
        }
        Err((step, e)) => Err(UpstreamFailure::Other(describe_step_failure(
            server,
            step,
            &e,
            target.timeout,
        ))),
    }
}

/// Drives an upstream machine to its event, giving each step (greeting,
/// capabilities, STARTTLS, TLS handshake, authentication) its own `timeout`. On
/// failure, says which step failed.
pub(super) async fn drive_stepwise<M: Machine>(
    stream: &mut Stream,
    machine: M,
    upgrade: &Upgrade,
    timeout: Duration,
) -> Result<M::Event, (Step, DriveError<M::Error>)> {
    let mut machine = Stepped::new(machine);
    loop {
        let deadline = Instant::now() + timeout;
        let step = machine.step;
        match drive(stream, &mut machine, upgrade, deadline).await {
            Ok(StepEvent::Next) => continue,
            Ok(StepEvent::Done(event)) => return Ok(event),
            Err(e) => return Err((step, e)),
        }
    }
}

/// The log text for a failed step: which server, which step, why.
pub(super) fn describe_step_failure<E: std::fmt::Display>(
    server: &ServerAddr,
    step: Step,
    e: &DriveError<E>,
    timeout: Duration,
) -> String {
    match e {
        DriveError::Timeout => format!("{server}: {step}: timed out after {timeout:?}"),
        DriveError::Tls(e) => format!(
            "{server}: {step} failed: {}",
            crate::tls::describe_handshake_error(e)
        ),
        e => format!("{server}: {step}: {e}"),
    }
}

/// One step of an upstream login, each with its own timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Greeting,
    Capabilities,
    StartTls,
    TlsHandshake,
    Authentication,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Greeting => "greeting",
            Step::Capabilities => "capabilities",
            Step::StartTls => "STARTTLS",
            Step::TlsHandshake => "STARTTLS TLS handshake",
            Step::Authentication => "authentication",
        })
    }
}

impl Step {
    /// The step a command starts (only its first bytes are looked at, never logged).
    fn of_command(bytes: &[u8]) -> Step {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(32)]).to_ascii_uppercase();
        let mut words = head.split_ascii_whitespace();
        let first = words.next().unwrap_or_default();
        let verb = match first {
            "STLS" | "CAPA" | "EHLO" | "HELO" | "STARTTLS" | "CAPABILITY" => first,
            // IMAP: the verb follows the tag.
            _ => words.next().unwrap_or_default(),
        };
        match verb {
            "STARTTLS" | "STLS" => Step::StartTls,
            "CAPABILITY" | "CAPA" | "EHLO" | "HELO" => Step::Capabilities,
            _ => Step::Authentication,
        }
    }
}

/// What the [`Stepped`] machine hands the driver: a new step begins (drive again with
/// a fresh deadline), or the inner machine's event.
enum StepEvent<E> {
    Next,
    Done(E),
}

/// Wraps an upstream machine so that [`drive`] returns at each step boundary (a
/// command about to be sent, a TLS upgrade about to start).
struct Stepped<M> {
    inner: M,
    step: Step,
    pending: Option<Io>,
}

impl<M: Machine> Stepped<M> {
    fn new(inner: M) -> Self {
        Stepped {
            inner,
            step: Step::Greeting,
            pending: None,
        }
    }
}

impl<M: Machine> Machine for Stepped<M> {
    type Event = StepEvent<M::Event>;
    type Error = M::Error;

    fn feed(&mut self, bytes: &[u8]) {
        self.inner.feed(bytes)
    }

    fn next(&mut self) -> Result<Self::Event, Interrupt<M::Error>> {
        if let Some(io) = self.pending.take() {
            return Err(Interrupt::Io(io));
        }
        let step = match self.inner.next() {
            Ok(event) => return Ok(StepEvent::Done(event)),
            Err(Interrupt::Io(Io::Write(bytes))) => {
                let step = Step::of_command(&bytes);
                self.pending = Some(Io::Write(bytes));
                step
            }
            Err(Interrupt::Io(Io::StartTls)) => {
                self.pending = Some(Io::StartTls);
                Step::TlsHandshake
            }
            Err(other) => return Err(other),
        };
        self.step = step;
        Ok(StepEvent::Next)
    }

    fn tls_established(&mut self) {
        self.inner.tls_established()
    }
}

#[cfg(test)]
mod tests {
    use super::Step;

    #[test]
    fn commands_name_their_step() {
        let cases: [(&[u8], Step); 9] = [
            (b"A1 CAPABILITY\r\n", Step::Capabilities),
            (b"A1 STARTTLS\r\n", Step::StartTls),
            (
                b"A3 AUTHENTICATE XOAUTH2 dXNlcj1h\r\n",
                Step::Authentication,
            ),
            (b"CAPA\r\n", Step::Capabilities),
            (b"STLS\r\n", Step::StartTls),
            (b"AUTH XOAUTH2 dXNlcj1h\r\n", Step::Authentication),
            (b"EHLO client.example\r\n", Step::Capabilities),
            (b"STARTTLS\r\n", Step::StartTls),
            // The answer to an error challenge.
            (b"\r\n", Step::Authentication),
        ];
        for (bytes, step) in cases {
            assert_eq!(Step::of_command(bytes), step, "{bytes:?}");
        }
    }
}
