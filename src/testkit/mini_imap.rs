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
//! RFC822.HEADER, RFC822.TEXT, BODY[], BODY[HEADER], BODY[TEXT], their BODY.PEEK forms
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

// ---------------------------------------------------------------------------------
// Command tokens
// ---------------------------------------------------------------------------------

/// One token of a command. Parenthesised lists are flat (`(` and `)` are tokens);
/// `BODY[...]<...>` is one atom, spaces and parentheses inside the brackets included.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    LParen,
    RParen,
}

impl Tok {
    fn atom(&self) -> Option<&str> {
        match self {
            Tok::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// An `astring` (atom, quoted string or literal) as text.
    fn astring(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Tok::Atom(a) => Some(std::borrow::Cow::Borrowed(a.as_str())),
            Tok::Str(s) => Some(String::from_utf8_lossy(s)),
            _ => None,
        }
    }

    fn is_atom(&self, word: &str) -> bool {
        self.atom().is_some_and(|a| a.eq_ignore_ascii_case(word))
    }
}

/// A literal announced at the end of a line: `{len}` (synchronizing) or `{len+}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Literal {
    len: usize,
    sync: bool,
}

/// Appends the tokens of one line (CRLF removed) to `out`; returns the literal that
/// ends the line, if any.
fn tokenize(line: &[u8], out: &mut Vec<Tok>) -> Result<Option<Literal>, &'static str> {
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b' ' => i += 1,
            b'(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            b'"' => {
                i += 1;
                let mut s = Vec::new();
                loop {
                    match line.get(i) {
                        None => return Err("Unterminated quoted string"),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => match line.get(i + 1) {
                            Some(&c @ (b'"' | b'\\')) => {
                                s.push(c);
                                i += 2;
                            }
                            _ => return Err("Invalid escape in quoted string"),
                        },
                        Some(&c) => {
                            s.push(c);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(s));
            }
            b'{' => {
                let inner = line[i + 1..]
                    .strip_suffix(b"}")
                    .ok_or("A literal must end the line")?;
                let (digits, sync) = match inner.strip_suffix(b"+") {
                    Some(d) => (d, false),
                    None => (inner, true),
                };
                if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit)
                {
                    return Err("Invalid literal");
                }
                let len = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<usize>().ok())
                    .ok_or("Invalid literal")?;
                return Ok(Some(Literal { len, sync }));
            }
            _ => {
                let start = i;
                let mut depth = 0u32;
                while i < line.len() {
                    match line[i] {
                        b'[' => depth += 1,
                        b']' => depth = depth.saturating_sub(1),
                        b' ' | b'(' | b')' | b'"' | b'{' if depth == 0 => break,
                        c if c < 0x20 || c == 0x7f => return Err("Control character in command"),
                        _ => {}
                    }
                    i += 1;
                }
                out.push(Tok::Atom(
                    String::from_utf8_lossy(&line[start..i]).into_owned(),
                ));
            }
        }
    }
    Ok(None)
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty() && !tag.contains(['+', '*', '%', '\\', '[', ']'])
}

fn is_inbox(tok: &Tok) -> bool {
    tok.astring()
        .is_some_and(|m| m.eq_ignore_ascii_case("INBOX"))
}

// ---------------------------------------------------------------------------------
// Sequence sets
// ---------------------------------------------------------------------------------

/// Sorted, disjoint, inclusive ranges.
type Ranges = Vec<(u32, u32)>;

fn seq_number(s: &str) -> Result<Option<u32>, &'static str> {
    if s == "*" {
        return Ok(None);
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("Invalid sequence set");
    }
    match s.parse::<u32>() {
        Ok(0) | Err(_) => Err("Invalid sequence set"),
        Ok(n) => Ok(Some(n)),
    }
}

/// Parses a sequence set against a mailbox of `max` messages. With `clip` (UIDs,
/// SEARCH) numbers outside the mailbox are ignored (`n:*` past the end still names the
/// last message, RFC 3501 §6.4.8); without it (message sequence numbers) they are an
/// error, except that `*` in an empty mailbox names nothing.
fn parse_seq_set(s: &str, max: u32, clip: bool) -> Result<Ranges, &'static str> {
    let mut out = Ranges::new();
    for elem in s.split(',') {
        let (a, b) = elem.split_once(':').unwrap_or((elem, elem));
        let (a, b) = (seq_number(a)?, seq_number(b)?);
        let star = a.is_none() || b.is_none();
        let (a, b) = (a.unwrap_or(max), b.unwrap_or(max));
        let (lo, hi) = (a.min(b), a.max(b));
        if clip {
            let (lo, hi) = (lo.max(1), hi.min(max));
            if lo <= hi {
                out.push((lo, hi));
            }
        } else if max == 0 && star {
            continue;
        } else if hi > max || lo == 0 {
            return Err("Invalid message sequence number");
        } else {
            out.push((lo, hi));
        }
    }
    out.sort_unstable();
    let mut merged = Ranges::with_capacity(out.len());
    for (lo, hi) in out {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    Ok(merged)
}

fn ranges_contain(ranges: &Ranges, x: u32) -> bool {
    let i = ranges.partition_point(|&(_, hi)| hi < x);
    ranges.get(i).is_some_and(|&(lo, _)| lo <= x)
}

// ---------------------------------------------------------------------------------
// FETCH data items
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Full,
    Header,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Flags,
    Uid,
    Size,
    InternalDate,
    /// RFC822, RFC822.HEADER, RFC822.TEXT.
    Rfc822(Part),
    Body {
        peek: bool,
        part: Part,
        partial: Option<(u32, u32)>,
    },
}

impl Item {
    fn sets_seen(self) -> bool {
        match self {
            Item::Rfc822(part) => part != Part::Header,
            Item::Body { peek, .. } => !peek,
            _ => false,
        }
    }
}

fn parse_body_item(upper: &str) -> Result<Item, &'static str> {
    let (peek, rest) = if let Some(r) = upper.strip_prefix("BODY.PEEK[") {
        (true, r)
    } else if let Some(r) = upper.strip_prefix("BODY[") {
        (false, r)
    } else {
        return Err("Unsupported FETCH data item");
    };
    let (section, after) = rest.split_once(']').ok_or("Invalid FETCH data item")?;
    let part = match section {
        "" => Part::Full,
        "HEADER" => Part::Header,
        "TEXT" => Part::Text,
        _ => return Err("Unsupported BODY section"),
    };
    let partial = if after.is_empty() {
        None
    } else {
        let inner = after
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .ok_or("Invalid partial")?;
        let (origin, count) = inner.split_once('.').ok_or("Invalid partial")?;
        let digits = |s: &str| -> Result<u32, &'static str> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err("Invalid partial");
            }
            s.parse().map_err(|_| "Invalid partial")
        };
        let (origin, count) = (digits(origin)?, digits(count)?);
        if count == 0 {
            return Err("Invalid partial");
        }
        Some((origin, count))
    };
    Ok(Item::Body {
        peek,
        part,
        partial,
    })
}

fn parse_fetch_items(toks: &[Tok]) -> Result<Vec<Item>, &'static str> {
    let atoms: Vec<&str> = match toks {
        [Tok::Atom(a)] => vec![a.as_str()],
        [Tok::LParen, inner @ .., Tok::RParen] => inner
            .iter()
            .map(|t| t.atom().ok_or("Invalid FETCH data items"))
            .collect::<Result<_, _>>()?,
        _ => return Err("Invalid FETCH data items"),
    };
    if atoms.is_empty() {
        return Err("Invalid FETCH data items");
    }
    let mut items = Vec::with_capacity(atoms.len());
    for atom in atoms {
        let upper = atom.to_ascii_uppercase();
        match upper.as_str() {
            "FLAGS" => items.push(Item::Flags),
            "UID" => items.push(Item::Uid),
            "RFC822.SIZE" => items.push(Item::Size),
            "INTERNALDATE" => items.push(Item::InternalDate),
            "FAST" => items.extend([Item::Flags, Item::InternalDate, Item::Size]),
            "RFC822" => items.push(Item::Rfc822(Part::Full)),
            "RFC822.HEADER" => items.push(Item::Rfc822(Part::Header)),
            "RFC822.TEXT" => items.push(Item::Rfc822(Part::Text)),
            other => items.push(parse_body_item(other)?),
        }
    }
    Ok(items)
}

/// The header (up to and including the empty line) and text of a message.
fn split_message(msg: &[u8]) -> (&[u8], &[u8]) {
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => msg.split_at(i + 4),
        None => (msg, &[]),
    }
}

fn part_of(msg: &[u8], part: Part) -> &[u8] {
    match part {
        Part::Full => msg,
        Part::Header => split_message(msg).0,
        Part::Text => split_message(msg).1,
    }
}

// ---------------------------------------------------------------------------------
// SASL
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    XOAuth2,
    OAuthBearer,
}

/// `Bearer <token>` (scheme case-insensitive) → token.
fn bearer_token(auth: &str) -> Option<&str> {
    let (scheme, token) = auth.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

/// XOAUTH2: `user=U ^A auth=Bearer T ^A ^A` → (user, token).
fn parse_xoauth2(raw: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(raw).ok()?;
    let (mut user, mut token) = (None, None);
    for field in text.split('\x01') {
        if let Some(u) = field.strip_prefix("user=") {
            user = Some(u);
        } else if let Some(a) = field.strip_prefix("auth=") {
            token = Some(bearer_token(a)?);
        }
    }
    Some((user?.to_owned(), token?.to_owned()))
}

/// GS2 `saslname` unescaping (RFC 5801): `=2C` → `,`, `=3D` → `=`.
fn gs2_unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i + 1..i + 3)? {
            "2C" | "2c" => out.push(','),
            "3D" | "3d" => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// OAUTHBEARER (RFC 7628): `gs2-header ^A host=H ^A port=P ^A auth=Bearer T ^A ^A` →
/// (authzid or "", token). Channel binding (`p=`) is not supported.
fn parse_oauthbearer(raw: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(raw).ok()?;
    let (gs2, kvpairs) = text.split_once('\x01')?;
    let mut gs2 = gs2.split(',');
    let (flag, authzid, end) = (gs2.next()?, gs2.next()?, gs2.next()?);
    if !matches!(flag, "n" | "y") || !end.is_empty() || gs2.next().is_some() {
        return None;
    }
    let user = match authzid {
        "" => String::new(),
        a => gs2_unescape(a.strip_prefix("a=")?)?,
    };
    let token = kvpairs
        .split('\x01')
        .find_map(|kv| kv.strip_prefix("auth="))
        .and_then(bearer_token)?;
    Some((user, token.to_owned()))
}

// ---------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------

enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Mailbox),
}

struct Mailbox {
    read_only: bool,
    /// `\Seen` per message, set by this session's body fetches.
    seen: Vec<bool>,
}

/// Outcome of reading one line.
enum Line {
    Ok,
    Eof,
    TooLong,
}

/// What the session does after a command.
enum Flow {
    Continue,
    Close,
}

struct Session<S> {
    io: BufReader<BufWriter<S>>,
    shared: Arc<Shared>,
    state: State,
    /// The current line, CRLF removed.
    line: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn new(stream: S, shared: Arc<Shared>) -> Self {
        Session {
            io: BufReader::with_capacity(READ_BUF, BufWriter::with_capacity(WRITE_BUF, stream)),
            shared,
            state: State::NotAuthenticated,
            line: Vec::new(),
        }
    }

    async fn run(mut self) -> io::Result<()> {
        self.send(GREETING).await?;
        self.io.flush().await?;
        loop {
            let flow = match self.read_line().await? {
                Line::Eof => return Ok(()),
                Line::TooLong => self.bye("Line too long").await?,
                Line::Ok => Box::pin(self.command()).await?,
            };
            if self.line.capacity() > LINE_KEEP {
                self.line = Vec::new();
            }
            match flow {
                Flow::Close => {
                    // Flushes the write buffer, then closes our half.
                    self.io.shutdown().await?;
                    return Ok(());
                }
                // With a whole pipelined command already buffered, answer it first.
                Flow::Continue if !self.io.buffer().contains(&b'\n') => self.io.flush().await?,
                Flow::Continue => {}
            }
        }
    }

    /// Reads one line into `self.line`, without its CRLF (a bare LF is accepted).
    async fn read_line(&mut self) -> io::Result<Line> {
        self.line.clear();
        let limit = (MAX_LINE + 2) as u64;
        let n = (&mut self.io)
            .take(limit)
            .read_until(b'\n', &mut self.line)
            .await?;
        if n == 0 {
            return Ok(Line::Eof);
        }
        if self.line.last() != Some(&b'\n') {
            return Ok(if self.line.len() as u64 >= limit {
                Line::TooLong
            } else {
                Line::Eof
            });
        }
        self.line.pop();
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(Line::Ok)
    }

    async fn send(&mut self, text: &str) -> io::Result<()> {
        self.io.write_all(text.as_bytes()).await
    }

    async fn tagged(&mut self, tag: &str, text: &str) -> io::Result<Flow> {
        self.send(&format!("{tag} {text}\r\n")).await?;
        Ok(Flow::Continue)
    }

    async fn bye(&mut self, text: &str) -> io::Result<Flow> {
        self.send(&format!("* BYE {text}\r\n")).await?;
        Ok(Flow::Close)
    }

    /// Sends a continuation request and reads the client's answer into `self.line`.
    async fn continuation(&mut self, text: &str) -> io::Result<Line> {
        self.send(&format!("+ {text}\r\n")).await?;
        self.io.flush().await?;
        self.read_line().await
    }

    fn authenticated(&self) -> bool {
        !matches!(self.state, State::NotAuthenticated)
    }

    /// Reads a whole command (the line in `self.line`, plus literals and the lines
    /// after them) and runs it.
    async fn command(&mut self) -> io::Result<Flow> {
        let mut toks = Vec::new();
        let mut literal = match tokenize(&self.line, &mut toks) {
            Ok(l) => l,
            Err(e) => return self.bad_early(&toks, e).await,
        };
        if let Some(lit) = literal
            && toks.get(1).is_some_and(|t| t.is_atom("APPEND"))
        {
            return self.append(toks, lit).await;
        }
        let mut total = self.line.len();
        while let Some(lit) = literal {
            total = total.saturating_add(lit.len);
            if total > MAX_LINE {
                if lit.sync {
                    return self.bad_early(&toks, "Command too long").await;
                }
                return self.bye("Command too long").await;
            }
            if lit.sync {
                self.send("+ Ready for literal data\r\n").await?;
                self.io.flush().await?;
            }
            let mut data = vec![0; lit.len];
            self.io.read_exact(&mut data).await?;
            toks.push(Tok::Str(data));
            match self.read_line().await? {
                Line::Ok => {}
                Line::Eof => return Ok(Flow::Close),
                Line::TooLong => return self.bye("Line too long").await,
            }
            total = total.saturating_add(self.line.len());
            literal = match tokenize(&self.line, &mut toks) {
                Ok(l) => l,
                Err(e) => return self.bad_early(&toks, e).await,
            };
        }
        self.dispatch(&toks).await
    }

    /// BAD for a command that could not be read, tagged when its tag is known.
    async fn bad_early(&mut self, toks: &[Tok], text: &str) -> io::Result<Flow> {
        match toks.first().and_then(Tok::atom).filter(|t| valid_tag(t)) {
            Some(tag) => {
                let tag = tag.to_owned();
                self.tagged(&tag, &format!("BAD {text}")).await
            }
            None => {
                self.send(&format!("* BAD {text}\r\n")).await?;
                Ok(Flow::Continue)
            }
        }
    }

    async fn dispatch(&mut self, toks: &[Tok]) -> io::Result<Flow> {
        let Some(tag) = toks.first().and_then(Tok::atom).filter(|t| valid_tag(t)) else {
            self.send("* BAD Missing or invalid tag\r\n").await?;
            return Ok(Flow::Continue);
        };
        let Some(cmd) = toks.get(1).and_then(Tok::atom) else {
            return self.tagged(tag, "BAD Missing command").await;
        };
        let cmd = cmd.to_ascii_uppercase();
        let args = &toks[2..];
        let authenticated = self.authenticated();
        let selected = matches!(self.state, State::Selected(_));
        let no_args = args.is_empty();
        match cmd.as_str() {
            "CAPABILITY" if no_args => {
                let caps = if authenticated {
                    CAPABILITIES_AUTHENTICATED
                } else {
                    CAPABILITIES_PRE_AUTH
                };
                self.send(&format!("* CAPABILITY {caps}\r\n")).await?;
                self.tagged(tag, "OK CAPABILITY completed").await
            }
            "NOOP" if no_args => self.tagged(tag, "OK NOOP completed").await,
            "LOGOUT" if no_args => {
                self.send("* BYE mini-imap logging out\r\n").await?;
                self.tagged(tag, "OK LOGOUT completed").await?;
                Ok(Flow::Close)
            }
            "ID" if (args.len() == 1 && args[0].is_atom("NIL"))
                || (args.first() == Some(&Tok::LParen) && args.last() == Some(&Tok::RParen)) =>
            {
                self.send("* ID (\"name\" \"mini-imap\")\r\n").await?;
                self.tagged(tag, "OK ID completed").await
            }
            "AUTHENTICATE" if !authenticated => self.authenticate(tag, args).await,
            "LOGIN" if !authenticated && args.len() == 2 => {
                self.shared.failed_logins.fetch_add(1, Ordering::Relaxed);
                self.tagged(
                    tag,
                    "NO [PRIVACYREQUIRED] LOGIN is disabled, use AUTHENTICATE XOAUTH2 or OAUTHBEARER",
                )
                .await
            }
            "SELECT" | "EXAMINE" if authenticated && args.len() == 1 => {
                self.select(tag, &args[0], cmd == "EXAMINE").await
            }
            "STATUS" if authenticated => self.status(tag, args).await,
            "LIST" | "LSUB" if authenticated && args.len() == 2 => {
                self.list(tag, &cmd, &args[0], &args[1]).await
            }
            "IDLE" if authenticated && no_args => self.idle(tag).await,
            "FETCH" if selected => self.fetch(tag, args, false).await,
            "SEARCH" if selected => self.search(tag, args, false).await,
            "UID" if selected && args.first().is_some_and(|a| a.is_atom("FETCH")) => {
                self.fetch(tag, &args[1..], true).await
            }
            "UID" if selected && args.first().is_some_and(|a| a.is_atom("SEARCH")) => {
                self.search(tag, &args[1..], true).await
            }
            "CHECK" if selected && no_args => self.tagged(tag, "OK CHECK completed").await,
            "CLOSE" | "UNSELECT" if selected && no_args => {
                self.state = State::Authenticated;
                self.tagged(tag, &format!("OK {cmd} completed")).await
            }
            // APPEND without a literal (a quoted message): count it too.
            "APPEND" if authenticated && args.len() >= 2 && is_inbox(&args[0]) => {
                if let Some(Tok::Str(msg)) = args.last() {
                    let len = msg.len() as u64;
                    self.shared.appended_bytes.fetch_add(len, Ordering::Relaxed);
                    self.tagged(tag, "OK APPEND completed").await
                } else {
                    self.tagged(tag, "BAD Invalid APPEND arguments").await
                }
            }
            "CAPABILITY" | "NOOP" | "LOGOUT" | "ID" | "AUTHENTICATE" | "LOGIN" | "SELECT"
            | "EXAMINE" | "STATUS" | "LIST" | "LSUB" | "IDLE" | "FETCH" | "SEARCH" | "UID"
            | "CHECK" | "CLOSE" | "UNSELECT" | "APPEND" => {
                self.tagged(
                    tag,
                    &format!("BAD {cmd}: invalid arguments or not valid in this state"),
                )
                .await
            }
            _ => self.tagged(tag, "BAD Unknown command").await,
        }
    }

    async fn authenticate(&mut self, tag: &str, args: &[Tok]) -> io::Result<Flow> {
        let (mechanism, initial) = match args {
            [Tok::Atom(m)] => (m, None),
            [Tok::Atom(m), Tok::Atom(ir)] => (m, Some(ir.as_bytes())),
            _ => {
                return self
                    .tagged(
                        tag,
                        "BAD Expected AUTHENTICATE mechanism [initial-response]",
                    )
                    .await;
            }
        };
        let mechanism = match mechanism.to_ascii_uppercase().as_str() {
            "XOAUTH2" => Mechanism::XOAuth2,
            "OAUTHBEARER" => Mechanism::OAuthBearer,
            _ => {
                return self
                    .tagged(tag, "NO [CANNOT] Unsupported authentication mechanism")
                    .await;
            }
        };
        let response: Vec<u8> = match initial {
            Some(ir) => ir.to_vec(),
            None => match self.continuation("").await? {
                Line::Ok => std::mem::take(&mut self.line),
                Line::Eof => return Ok(Flow::Close),
                Line::TooLong => return self.bye("Line too long").await,
            },
        };
        if response == b"*" {
            return self.tagged(tag, "BAD AUTHENTICATE cancelled").await;
        }
        let decoded = if response == b"=" {
            Vec::new()
        } else {
            match B64.decode(&response) {
                Ok(d) => d,
                Err(_) => return self.tagged(tag, "BAD Invalid base64").await,
            }
        };
        let credentials = match mechanism {
            Mechanism::XOAuth2 => parse_xoauth2(&decoded),
            Mechanism::OAuthBearer => parse_oauthbearer(&decoded),
        };
        let Some((user, token)) = credentials else {
            self.shared.failed_logins.fetch_add(1, Ordering::Relaxed);
            return self
                .tagged(tag, "NO [AUTHENTICATIONFAILED] Malformed SASL message")
                .await;
        };
        if (self.shared.validate)(&user, &token) {
            self.shared.logins.fetch_add(1, Ordering::Relaxed);
            self.state = State::Authenticated;
            tracing::debug!(%user, ?mechanism, "mini-imap login");
            let text = format!("OK [CAPABILITY {CAPABILITIES_AUTHENTICATED}] Logged in");
            return self.tagged(tag, &text).await;
        }
        self.shared.failed_logins.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%user, ?mechanism, "mini-imap refused a token");
        let challenge = B64.encode(ERROR_CHALLENGE_JSON);
        match self.continuation(&challenge).await? {
            Line::Ok if self.line == b"*" => self.tagged(tag, "BAD AUTHENTICATE cancelled").await,
            Line::Ok => {
                self.tagged(tag, "NO [AUTHENTICATIONFAILED] Invalid token")
                    .await
            }
            Line::Eof => Ok(Flow::Close),
            Line::TooLong => self.bye("Line too long").await,
        }
    }

    async fn select(&mut self, tag: &str, mailbox: &Tok, read_only: bool) -> io::Result<Flow> {
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        self.state = State::Authenticated;
        if !is_inbox(mailbox) {
            return self.tagged(tag, "NO [NONEXISTENT] No such mailbox").await;
        }
        let n = self.shared.count;
        let mut out = String::with_capacity(256);
        out.push_str("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n");
        out.push_str("* OK [PERMANENTFLAGS ()] No permanent flags\r\n");
        let _ = write!(out, "* {n} EXISTS\r\n* 0 RECENT\r\n");
        out.push_str("* OK [UIDVALIDITY 1] UIDs valid\r\n");
        let _ = write!(
            out,
            "* OK [UIDNEXT {}] Predicted next UID\r\n",
            u64::from(n) + 1
        );
        let (code, cmd) = if read_only {
            ("READ-ONLY", "EXAMINE")
        } else {
            ("READ-WRITE", "SELECT")
        };
        let _ = write!(out, "{tag} OK [{code}] {cmd} completed\r\n");
        self.send(&out).await?;
        self.state = State::Selected(Mailbox {
            read_only,
            seen: vec![false; n as usize],
        });
        Ok(Flow::Continue)
    }

    async fn status(&mut self, tag: &str, args: &[Tok]) -> io::Result<Flow> {
        let [mailbox, Tok::LParen, items @ .., Tok::RParen] = args else {
            return self
                .tagged(tag, "BAD Expected STATUS mailbox (items)")
                .await;
        };
        if !is_inbox(mailbox) {
            return self.tagged(tag, "NO [NONEXISTENT] No such mailbox").await;
        }
        let n = self.shared.count;
        let unseen = match &self.state {
            State::Selected(mb) => mb.seen.iter().filter(|s| !**s).count() as u64,
            _ => u64::from(n),
        };
        let mut out = String::from("* STATUS INBOX (");
        for (i, item) in items.iter().enumerate() {
            let Some(name) = item.atom().map(str::to_ascii_uppercase) else {
                return self.tagged(tag, "BAD Invalid STATUS item").await;
            };
            let value = match name.as_str() {
                "MESSAGES" => u64::from(n),
                "RECENT" => 0,
                "UIDNEXT" => u64::from(n) + 1,
                "UIDVALIDITY" => 1,
                "UNSEEN" => unseen,
                _ => return self.tagged(tag, "BAD Unsupported STATUS item").await,
            };
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(out, "{name} {value}");
        }
        out.push_str(")\r\n");
        self.send(&out).await?;
        self.tagged(tag, "OK STATUS completed").await
    }

    async fn list(
        &mut self,
        tag: &str,
        cmd: &str,
        reference: &Tok,
        pattern: &Tok,
    ) -> io::Result<Flow> {
        let (Some(reference), Some(pattern)) = (reference.astring(), pattern.astring()) else {
            return self
                .tagged(tag, &format!("BAD Invalid {cmd} arguments"))
                .await;
        };
        if pattern.is_empty() {
            // The hierarchy delimiter (RFC 3501 §6.3.8).
            if cmd == "LIST" {
                self.send("* LIST (\\Noselect) \"/\" \"\"\r\n").await?;
            }
        } else if wildcard_match(&format!("{reference}{pattern}"), "INBOX") {
            self.send(&format!("* {cmd} (\\HasNoChildren) \"/\" INBOX\r\n"))
                .await?;
        }
        self.tagged(tag, &format!("OK {cmd} completed")).await
    }

    async fn idle(&mut self, tag: &str) -> io::Result<Flow> {
        match self.continuation("idling").await? {
            Line::Ok if self.line.eq_ignore_ascii_case(b"DONE") => {
                self.tagged(tag, "OK IDLE terminated").await
            }
            Line::Ok => self.tagged(tag, "BAD Expected DONE").await,
            Line::Eof => Ok(Flow::Close),
            Line::TooLong => self.bye("Line too long").await,
        }
    }

    /// APPEND whose message comes as a literal: streams it away, counting its bytes.
    async fn append(&mut self, toks: Vec<Tok>, mut lit: Literal) -> io::Result<Flow> {
        let Some(tag) = toks.first().and_then(Tok::atom).filter(|t| valid_tag(t)) else {
            return self.bye("APPEND without a valid tag").await;
        };
        let refusal = if !self.authenticated() {
            Some("BAD APPEND: not valid in this state")
        } else if !toks.get(2).is_some_and(is_inbox) {
            Some("NO [TRYCREATE] No such mailbox")
        } else {
            None
        };
        if let Some(refusal) = refusal
            && lit.sync
        {
            // The client waits for our go-ahead, which it won't get.
            return self.tagged(tag, refusal).await;
        }
        loop {
            if lit.sync {
                self.send("+ Ready for literal data\r\n").await?;
                self.io.flush().await?;
            }
            self.discard(lit.len as u64).await?;
            if refusal.is_none() {
                self.shared
                    .appended_bytes
                    .fetch_add(lit.len as u64, Ordering::Relaxed);
            }
            // Rest of the command: empty, or another message (MULTIAPPEND style).
            match self.read_line().await? {
                Line::Ok => {}
                Line::Eof => return Ok(Flow::Close),
                Line::TooLong => return self.bye("Line too long").await,
            }
            let mut rest = Vec::new();
            match tokenize(&self.line, &mut rest) {
                Ok(Some(next)) => lit = next,
                Ok(None) => break,
                Err(e) => return self.tagged(tag, &format!("BAD {e}")).await,
            }
        }
        self.tagged(tag, refusal.unwrap_or("OK APPEND completed"))
            .await
    }

    /// Reads and drops `n` bytes.
    async fn discard(&mut self, mut n: u64) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        // Bigger than the read buffer, so reads bypass it once it is drained.
        let mut chunk = vec![0u8; DISCARD_CHUNK.min(usize::try_from(n).unwrap_or(usize::MAX))];
        while n > 0 {
            let want = chunk.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = self.io.read(&mut chunk[..want]).await?;
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            n -= got as u64;
        }
        Ok(())
    }

    async fn fetch(&mut self, tag: &str, args: &[Tok], uid: bool) -> io::Result<Flow> {
        let cmd = if uid { "UID FETCH" } else { "FETCH" };
        let Some((Tok::Atom(set), items)) = args.split_first() else {
            return self
                .tagged(tag, &format!("BAD Expected {cmd} set items"))
                .await;
        };
        let n = self.shared.count;
        let ranges = match parse_seq_set(set, n, uid) {
            Ok(r) => r,
            Err(e) => return self.tagged(tag, &format!("BAD {e}")).await,
        };
        let mut items = match parse_fetch_items(items) {
            Ok(i) => i,
            Err(e) => return self.tagged(tag, &format!("BAD {e}")).await,
        };
        if uid && !items.contains(&Item::Uid) {
            // UID FETCH always reports the UID (RFC 3501 §6.4.8).
            items.insert(0, Item::Uid);
        }
        let flags_requested = items.contains(&Item::Flags);
        let State::Selected(mailbox) = &self.state else {
            return self.tagged(tag, "BAD No mailbox selected").await;
        };
        let sets_seen = !mailbox.read_only && items.iter().any(|i| i.sets_seen());
        let messages = self.shared.messages.clone();
        let mut head = String::with_capacity(128);
        for &(lo, hi) in &ranges {
            for seq in lo..=hi {
                let idx = seq as usize - 1;
                let msg = &messages[idx];
                let mut newly_seen = false;
                let seen = match &mut self.state {
                    State::Selected(mb) => {
                        if sets_seen && !mb.seen[idx] {
                            mb.seen[idx] = true;
                            newly_seen = true;
                        }
                        mb.seen[idx]
                    }
                    _ => false,
                };
                let flags = if seen { "FLAGS (\\Seen)" } else { "FLAGS ()" };
                head.clear();
                let _ = write!(head, "* {seq} FETCH (");
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        head.push(' ');
                    }
                    let (name, part, partial) = match *item {
                        Item::Flags => {
                            head.push_str(flags);
                            continue;
                        }
                        Item::Uid => {
                            let _ = write!(head, "UID {seq}");
                            continue;
                        }
                        Item::Size => {
                            let _ = write!(head, "RFC822.SIZE {}", msg.len());
                            continue;
                        }
                        Item::InternalDate => {
                            let _ = write!(head, "INTERNALDATE {INTERNALDATE}");
                            continue;
                        }
                        Item::Rfc822(part) => {
                            let name = match part {
                                Part::Full => "RFC822",
                                Part::Header => "RFC822.HEADER",
                                Part::Text => "RFC822.TEXT",
                            };
                            (name, part, None)
                        }
                        Item::Body { part, partial, .. } => {
                            let name = match part {
                                Part::Full => "BODY[]",
                                Part::Header => "BODY[HEADER]",
                                Part::Text => "BODY[TEXT]",
                            };
                            (name, part, partial)
                        }
                    };
                    let mut data = part_of(msg, part);
                    head.push_str(name);
                    if let Some((origin, count)) = partial {
                        let start = (origin as usize).min(data.len());
                        let end = start.saturating_add(count as usize).min(data.len());
                        data = &data[start..end];
                        let _ = write!(head, "<{origin}>");
                    }
                    let _ = write!(head, " {{{}}}\r\n", data.len());
                    self.io.write_all(head.as_bytes()).await?;
                    head.clear();
                    // Big bodies bypass the write buffer: no copy.
                    self.io.write_all(data).await?;
                }
                if newly_seen && !flags_requested {
                    head.push_str(" FLAGS (\\Seen)");
                }
                head.push_str(")\r\n");
                self.io.write_all(head.as_bytes()).await?;
            }
        }
        self.tagged(tag, &format!("OK {cmd} completed")).await
    }

    async fn search(&mut self, tag: &str, args: &[Tok], uid: bool) -> io::Result<Flow> {
        let n = self.shared.count;
        let mut args = args;
        if args.first().is_some_and(|a| a.is_atom("CHARSET")) {
            match args.get(1).and_then(Tok::astring) {
                Some(cs)
                    if cs.eq_ignore_ascii_case("UTF-8") || cs.eq_ignore_ascii_case("US-ASCII") =>
                {
                    args = &args[2..];
                }
                _ => {
                    return self
                        .tagged(tag, "NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
                        .await;
                }
            }
        }
        if args.is_empty() {
            return self.tagged(tag, "BAD Missing search criteria").await;
        }
        // Every key narrows the result (AND).
        let mut filters: Vec<Ranges> = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let Some(key) = args[i].atom() else {
                return self.tagged(tag, "BAD Unsupported search key").await;
            };
            if key.eq_ignore_ascii_case("ALL") {
            } else if key.eq_ignore_ascii_case("UID") {
                let Some(set) = args.get(i + 1).and_then(Tok::atom) else {
                    return self.tagged(tag, "BAD Expected UID set").await;
                };
                match parse_seq_set(set, n, true) {
                    Ok(r) => filters.push(r),
                    Err(e) => return self.tagged(tag, &format!("BAD {e}")).await,
                }
                i += 1;
            } else {
                match parse_seq_set(key, n, true) {
                    Ok(r) => filters.push(r),
                    Err(_) => return self.tagged(tag, "BAD Unsupported search key").await,
                }
            }
            i += 1;
        }
        let mut out = String::from("* SEARCH");
        for x in 1..=n {
            if filters.iter().all(|f| ranges_contain(f, x)) {
                let _ = write!(out, " {x}");
            }
        }
        out.push_str("\r\n");
        self.send(&out).await?;
        let cmd = if uid { "UID SEARCH" } else { "SEARCH" };
        self.tagged(tag, &format!("OK {cmd} completed")).await
    }
}

/// LIST pattern matching: `*` and `%` match any run of characters (the only mailbox,
/// INBOX, has no hierarchy); case-insensitive, as INBOX is.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*' | b'%', rest)) => (0..=n.len()).any(|k| go(rest, &n[k..])),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(d, nrest)| c.eq_ignore_ascii_case(d) && go(rest, nrest)),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn tokenizes_commands() {
        let mut t = Vec::new();
        let lit = tokenize(
            b"a1 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)] BODY[]<0.10>)",
            &mut t,
        )
        .unwrap();
        assert_eq!(lit, None);
        assert_eq!(
            t,
            vec![
                Tok::Atom("a1".into()),
                Tok::Atom("FETCH".into()),
                Tok::Atom("1:*".into()),
                Tok::LParen,
                Tok::Atom("FLAGS".into()),
                Tok::Atom("BODY.PEEK[HEADER.FIELDS (FROM TO)]".into()),
                Tok::Atom("BODY[]<0.10>".into()),
                Tok::RParen,
            ]
        );
        t.clear();
        let lit = tokenize(br#"a2 LOGIN "us\"er" {12+}"#, &mut t).unwrap();
        assert_eq!(
            lit,
            Some(Literal {
                len: 12,
                sync: false
            })
        );
        assert_eq!(t[2], Tok::Str(b"us\"er".to_vec()));
        t.clear();
        assert_eq!(
            tokenize(b"a3 APPEND INBOX {5}", &mut t).unwrap(),
            Some(Literal { len: 5, sync: true })
        );
        for bad in [&b"a \"open"[..], b"a {5} x", b"a {x}", b"a \x01"] {
            assert!(tokenize(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sequence_sets() {
        assert_eq!(parse_seq_set("1:*", 3, false), Ok(vec![(1, 3)]));
        assert_eq!(parse_seq_set("1,3", 3, false), Ok(vec![(1, 1), (3, 3)]));
        assert_eq!(parse_seq_set("3:2,1", 3, false), Ok(vec![(1, 3)]));
        assert_eq!(parse_seq_set("*", 3, false), Ok(vec![(3, 3)]));
        assert!(parse_seq_set("4", 3, false).is_err());
        assert!(parse_seq_set("0", 3, false).is_err());
        assert!(parse_seq_set("1,,2", 3, false).is_err());
        assert_eq!(parse_seq_set("1:*", 0, false), Ok(vec![]));
        assert_eq!(parse_seq_set("9:*", 3, true), Ok(vec![(3, 3)]));
        assert_eq!(parse_seq_set("4:9", 3, true), Ok(vec![]));
        assert_eq!(parse_seq_set("1:*", 0, true), Ok(vec![]));
        let r = parse_seq_set("2,5:6", 10, true).unwrap();
        assert!(!ranges_contain(&r, 1) && ranges_contain(&r, 2) && ranges_contain(&r, 6));
        assert!(!ranges_contain(&r, 7) && !ranges_contain(&r, 4));
    }

    #[test]
    fn sasl_messages() {
        assert_eq!(
            parse_xoauth2(b"user=a@b.c\x01auth=Bearer tok\x01\x01"),
            Some(("a@b.c".into(), "tok".into()))
        );
        assert_eq!(parse_xoauth2(b"user=a\x01auth=Basic tok\x01\x01"), None);
        assert_eq!(parse_xoauth2(b"auth=Bearer tok\x01\x01"), None);
        assert_eq!(
            parse_oauthbearer(b"n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01auth=Bearer t\x01\x01"),
            Some(("a,b=c".into(), "t".into()))
        );
        assert_eq!(
            parse_oauthbearer(b"n,,\x01auth=bearer t\x01\x01"),
            Some((String::new(), "t".into()))
        );
        assert_eq!(
            parse_oauthbearer(b"p=tls-unique,,\x01auth=Bearer t\x01\x01"),
            None
        );
        assert_eq!(
            parse_oauthbearer(b"n,a=x=41,\x01auth=Bearer t\x01\x01"),
            None
        );
        assert_eq!(parse_oauthbearer(b"n,a=x,\x01host=h\x01\x01"), None);
    }

    #[test]
    fn fetch_items_and_parts() {
        let mut t = Vec::new();
        tokenize(b"(UID BODY.PEEK[] body[text]<2.3> FAST)", &mut t).unwrap();
        assert_eq!(
            parse_fetch_items(&t).unwrap(),
            vec![
                Item::Uid,
                Item::Body {
                    peek: true,
                    part: Part::Full,
                    partial: None
                },
                Item::Body {
                    peek: false,
                    part: Part::Text,
                    partial: Some((2, 3))
                },
                Item::Flags,
                Item::InternalDate,
                Item::Size,
            ]
        );
        for bad in [
            "ENVELOPE",
            "BODY",
            "BODY[1]",
            "BODY[]<1.0>",
            "BODYSTRUCTURE",
        ] {
            assert!(
                parse_fetch_items(&[Tok::Atom(bad.into())]).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            split_message(b"A: b\r\n\r\nbody"),
            (&b"A: b\r\n\r\n"[..], &b"body"[..])
        );
        assert_eq!(split_message(b"A: b\r\n"), (&b"A: b\r\n"[..], &b""[..]));
        assert!(wildcard_match("*", "INBOX") && wildcard_match("in%", "INBOX"));
        assert!(!wildcard_match("Sent", "INBOX"));
    }
}
