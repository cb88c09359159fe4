//! `mini-imap`: a small IMAP4rev1 server (RFC 3501) on tokio that only takes OAuth 2.0
//! logins, SASL XOAUTH2 and OAUTHBEARER (RFC 7628), with SASL-IR (RFC 4959).
//!
//! Every user sees the same INBOX, served from memory ([`MiniImapConfig::messages`]);
//! message `i` (1-based) has UID `i`, UIDVALIDITY is 1. The mailbox never changes:
//! `APPEND` reads and counts the message, then drops it ([`MiniImap::appended_bytes`]).
//! `\Seen` is set by non-PEEK body fetches, per session only (it is not permanent).
//!
//! Supported: CAPABILITY, NOOP, LOGOUT, ID, AUTHENTICATE (XOAUTH2, OAUTHBEARER), LOGIN
//! (always refused: OAuth only), SELECT, EXAMINE, STATUS, LIST, LSUB, APPEND, IDLE,
//! FETCH / UID FETCH (FLAGS, UID, RFC822.SIZE, INTERNALDATE, FAST, RFC822,
//! RFC822.HEADER, RFC822.TEXT, `BODY[]`, `BODY[HEADER]`, `BODY[TEXT]`, their BODY.PEEK forms
//! and `<origin.count>` partials), SEARCH / UID SEARCH (ALL, sequence sets, UID sets),
//! CHECK, CLOSE, UNSELECT. Anything else gets a tagged BAD. Command literals (`{n}` and
//! LITERAL+ `{n+}`) are accepted everywhere.
//!
//! Cost per session: one task, a 4 KiB read buffer, a 4 KiB write buffer, and the
//! current line. Lines and commands are bounded to 64 KiB (APPEND literals are
//! streamed and not bounded). Message bodies bigger than the write buffer go straight
//! from the shared [`Bytes`] to the socket.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter,
};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest command line (and whole command, literals included, except APPEND's).
pub const MAX_LINE: usize = 64 * 1024;
const READ_BUF: usize = 4 * 1024;
const WRITE_BUF: usize = 4 * 1024;
/// Read size while discarding an APPEND literal.
const DISCARD_CHUNK: usize = 64 * 1024;
/// `line` is given back to the allocator when a long command grew it past this.
const LINE_KEEP: usize = 8 * 1024;
const BACKLOG: u32 = 4096;

/// The greeting, sent as soon as a client connects (after the TLS handshake).
pub const GREETING: &str =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER ID] mini-imap ready\r\n";
/// Capabilities before authentication.
pub const CAPABILITIES_PRE_AUTH: &str = "IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER ID";
/// Capabilities once authenticated.
pub const CAPABILITIES_AUTHENTICATED: &str = "IMAP4rev1 IDLE ID UNSELECT LITERAL+";
/// JSON of the SASL error challenge sent (base64) when a token is refused.
pub const ERROR_CHALLENGE_JSON: &str = r#"{"status":"401","schemes":"bearer","scope":"mail"}"#;
/// INTERNALDATE of every message.
const INTERNALDATE: &str = "\"01-Jan-2024 00:00:00 +0000\"";

/// Standard alphabet; padding optional (some clients leave it out).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decides whether an OAuth bearer token is valid for a user: `(user, token) -> bool`.
pub type TokenValidator = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// What a [`MiniImap`] serves and whom it lets in.
#[derive(Clone)]
pub struct MiniImapConfig {
    /// Decides whether an OAuth bearer token is valid for a user; returns true when it
    /// is. The user is the XOAUTH2 `user=` or the OAUTHBEARER authzid (`a=`, unescaped;
    /// empty when the client sent none).
    pub validate: TokenValidator,
    /// The messages of every user's INBOX (raw RFC 5322 bytes, CRLF line ends).
    pub messages: Arc<Vec<Bytes>>,
    /// Optional TLS (implicit) server config.
    pub tls: Option<Arc<ServerConfig>>,
}

impl std::fmt::Debug for MiniImapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniImapConfig")
            .field("messages", &self.messages.len())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

struct Shared {
    validate: TokenValidator,
    messages: Arc<Vec<Bytes>>,
    count: u32,
    logins: AtomicU64,
    failed_logins: AtomicU64,
    appended_bytes: AtomicU64,
}

/// A running server. Dropping it stops accepting and closes every session (in the
/// background); [`MiniImap::shutdown`] does the same and waits for it.
pub struct MiniImap {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MiniImap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniImap")
            .field("addr", &self.addr)
            .field("sessions", &self.tracker.len())
            .finish_non_exhaustive()
    }
}

impl MiniImap {
    /// Binds `bind` (port 0 picks a free port) and starts serving in the background.
    pub async fn start(bind: SocketAddr, cfg: MiniImapConfig) -> io::Result<MiniImap> {
        let socket = if bind.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(bind)?;
        let listener = socket.listen(BACKLOG)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            validate: cfg.validate,
            count: u32::try_from(cfg.messages.len()).unwrap_or(u32::MAX),
            messages: cfg.messages,
            logins: AtomicU64::new(0),
            failed_logins: AtomicU64::new(0),
            appended_bytes: AtomicU64::new(0),
        });
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let task = tokio::spawn(accept_loop(
            listener,
            shared.clone(),
            cfg.tls.map(TlsAcceptor::from),
            cancel.clone(),
            tracker.clone(),
        ));
        Ok(MiniImap {
            addr,
            shared,
            cancel,
            tracker,
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Successful OAuth logins so far.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::Relaxed)
    }

    /// Refused logins so far: refused or malformed AUTHENTICATE exchanges, and every
    /// LOGIN command (always refused).
    pub fn failed_logins(&self) -> u64 {
        self.shared.failed_logins.load(Ordering::Relaxed)
    }

    /// Message bytes received by APPEND so far (literal contents only).
    pub fn appended_bytes(&self) -> u64 {
        self.shared.appended_bytes.load(Ordering::Relaxed)
    }

    /// Sessions currently open (TLS handshakes included).
    pub fn active_sessions(&self) -> usize {
        self.tracker.len()
    }

    /// Stops accepting, closes every session and waits until all are gone.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for MiniImap {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                let shared = shared.clone();
                let tls = tls.clone();
                let cancel = cancel.clone();
                tracker.spawn(async move {
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        r = serve(tcp, tls, shared) => {
                            if let Err(e) = r {
                                tracing::debug!(%peer, error = %e, "mini-imap session ended with an error");
                            }
                        }
                    }
                });
            }
            Err(e) => {
                // Typically EMFILE under load: back off instead of spinning.
                tracing::warn!(error = %e, "mini-imap accept failed");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

async fn serve(tcp: TcpStream, tls: Option<TlsAcceptor>, shared: Arc<Shared>) -> io::Result<()> {
    match tls {
        None => Session::new(tcp, shared).run().await,
        Some(acceptor) => {
            let stream = acceptor.accept(tcp).await?;
            Session::new(stream, shared).run().await
        }
    }
}

mod fetch;
mod mailbox;
mod sasl;
mod session;
mod syntax;
#[cfg(test)]
mod unit_tests;

use self::session::*;
