//! Shared vocabulary of the sans-I/O protocol machines.
//!
//! Every machine (per protocol: one facing the downstream client, one facing the
//! upstream server) has the same shape, modelled on imap-next:
//!
//! * `feed(&mut self, bytes: &[u8])` hands it bytes read from the socket;
//! * `next(&mut self) -> Result<Event, Interrupt<E>>` asks it what happens next.
//!
//! An [`Interrupt::Io`] tells the driver (`crate::driver`) to do I/O: write bytes, read
//! more, or upgrade the stream to TLS. An [`Interrupt::Error`] ends the session. Events
//! are the things the session must decide on (a login attempt, a finished upstream login).
//! Machines never sleep, never read clocks and never touch sockets: `driver.rs` owns
//! timeouts, `session.rs` owns decisions.

pub mod imap;
pub mod line;
pub mod pop3;
mod preauth;
pub mod sasl;
pub mod smtp;
#[cfg(test)]
pub(crate) mod testing;

use secrecy::SecretString;

/// I/O the driver must perform before calling `next()` again.
///
/// `Debug` shows only the length of `Write`: upstream writes carry the access token
/// (the SASL initial response), so the bytes must never reach a log by accident.
#[derive(PartialEq, Eq)]
#[must_use]
pub enum Io {
    /// Read more bytes from the peer and `feed()` them.
    NeedInput,
    /// Write these bytes to the peer (and flush).
    Write(Vec<u8>),
    /// Upgrade the stream to TLS now (server role on the downstream side, client role
    /// upstream), then call the machine's `tls_established()`.
    StartTls,
    /// Flush pending writes and close the connection (client said LOGOUT/QUIT, or too
    /// many errors).
    Close,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Io::NeedInput => f.write_str("NeedInput"),
            Io::Write(bytes) => write!(f, "Write({} bytes)", bytes.len()),
            Io::StartTls => f.write_str("StartTls"),
            Io::Close => f.write_str("Close"),
        }
    }
}

/// Why `next()` did not return an event.
#[derive(Debug)]
#[must_use]
pub enum Interrupt<E> {
    Io(Io),
    Error(E),
}

impl<E> From<Io> for Interrupt<E> {
    fn from(io: Io) -> Self {
        Interrupt::Io(io)
    }
}

/// Limits every pre-auth machine enforces. Defaults follow issue #5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest command line before login, CRLF included.
    pub max_line: usize,
    /// Largest literal `{n}` accepted before login.
    pub max_literal: usize,
    /// Longest SASL response (base64 line) before login.
    pub max_sasl: usize,
    /// Failed logins on one connection before it is closed.
    pub max_auth_failures: u32,
    /// Protocol errors (BAD) before login before the connection is closed.
    pub max_errors: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 8 * 1024,
            max_literal: 4 * 1024,
            max_sasl: 12 * 1024,
            max_auth_failures: 3,
            max_errors: 5,
        }
    }
}

/// The pre-login limit that made a downstream machine close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    LineTooLong,
    LiteralTooLong,
    TooManyErrors,
    TooManyFailures,
}

/// What the local (downstream) side of a listener offers with respect to TLS, as the
/// downstream machine sees it at this moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTls {
    /// Plain connection, no STARTTLS offered (`tls = "none"`).
    None,
    /// Plain connection on a `tls = "starttls"` listener: STARTTLS offered and
    /// required before any authentication.
    StartTlsRequired,
    /// The connection is encrypted (implicit TLS, or after STARTTLS).
    Active,
}

/// How the upstream connection gets its TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTls {
    /// TLS from the first byte; the stream the machine sees is already encrypted.
    Implicit,
    /// The machine must issue STARTTLS and refuse to continue without it.
    StartTls,
    /// No TLS (only for loopback upstreams).
    None,
}

/// SASL mechanism used upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    Xoauth2,
    Oauthbearer,
}

/// Credentials a legacy client presented. `Debug` never shows the password.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// SASL authorization identity, when the client sent a non-empty one.
    pub authzid: Option<String>,
    pub username: String,
    pub password: SecretString,
}

/// Why the session refuses a login; each protocol's downstream `reject()` turns it into
/// its own reply (IMAP `NO [...]`, POP3 `-ERR [...]`, SMTP `535`/`454`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRejection {
    /// Wrong user or password.
    BadCredentials,
    /// The password was right but the account needs a new OAuth consent; the message
    /// says what to do.
    NeedsReauthorization(String),
    /// Temporary failure (token endpoint or upstream down).
    Unavailable(String),
}

/// What a downstream machine wants the session to decide on, and its end (the same
/// for all three protocols).
#[derive(Debug)]
pub enum DownstreamEvent {
    /// A syntactically valid login. Answer with `accept()` or `reject()`.
    Login(Credentials),
    /// The final success reply (IMAP tagged `OK`, POP3 `+OK`, SMTP `235`) has been
    /// handed out; splice from here. `leftover` are bytes the client already sent after
    /// its login (e.g. a pipelined SMTP `MAIL FROM`): replay them upstream first.
    Done { leftover: Vec<u8> },
}

/// An upstream machine's result (the same for all three protocols).
#[derive(Debug, PartialEq, Eq)]
pub enum UpstreamEvent {
    /// Logged in. `leftover` are the bytes the server sent after its success reply:
    /// pass them to the client first. `capabilities`: IMAP takes them from the tagged
    /// OK's `[CAPABILITY ...]` code, else from an untagged `CAPABILITY` after
    /// authentication, else `None`; always `None` for POP3 (the `+OK` of AUTH carries
    /// none, and clients ask CAPA after login, upstream by then) and SMTP (a `235`
    /// carries none; the extensions are learned by [`smtp::SmtpProbe`]).
    LoggedIn {
        capabilities: Option<String>,
        leftover: Vec<u8>,
    },
}

/// What the upstream machine needs to log in.
#[derive(Debug, Clone)]
pub struct UpstreamLogin {
    pub tls: UpstreamTls,
    pub mechanism: Mechanism,
    /// Identity sent upstream (`user=` / `a=`).
    pub username: String,
    pub access_token: SecretString,
    /// host name sent in OAUTHBEARER's `host=` field.
    pub host: String,
    pub port: u16,
}

/// Why the upstream refused or failed the OAuth login.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamAuthError {
    /// The server rejected the token (the error challenge said so, or a plain NO).
    /// `status` is the server's JSON `status` (e.g. "401", "invalid_token") if any.
    #[error("upstream rejected the access token ({status})")]
    TokenRejected { status: String },
    /// The server could not check the token right now (`NO [UNAVAILABLE]`, 454, ...).
    #[error("upstream temporarily unable to authenticate: {0}")]
    Unavailable(String),
    /// STARTTLS was required but the server did not offer it or refused it.
    #[error("upstream did not offer or refused STARTTLS; refusing to continue in cleartext")]
    StartTlsUnavailable,
    /// The server does not offer the configured SASL mechanism.
    #[error("upstream does not offer AUTH={0}")]
    MechanismUnavailable(&'static str),
    /// Anything else the server said that we could not use.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
}
