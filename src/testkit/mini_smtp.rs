//! `mini-smtp`: a small ESMTP submission server (RFC 5321) on tokio that only takes
//! OAuth 2.0 logins (SASL XOAUTH2 and OAUTHBEARER, RFC 7628, with or without the
//! initial response) and swallows messages: DATA is scanned for the terminating
//! `CRLF.CRLF`, counted ([`MiniSmtp::data_bytes`]) and dropped. It is the fast SMTP
//! upstream of the benchmarks (Dovecot's submission service relays every message,
//! which would measure the relay rather than the proxy).
//!
//! Supported: EHLO, HELO, AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT; anything else gets
//! `500`. MAIL before AUTH gets `530`. Plain TCP or implicit TLS; no STARTTLS.
//! Cost per session: one task and a 64 KiB buffer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use super::TokenValidator;

const BUF: usize = 64 * 1024;
/// Longest command line.
const MAX_LINE: usize = 4096;

/// The EHLO reply after the first line.
pub const EHLO_EXTENSIONS: &[&str] = &[
    "PIPELINING",
    "8BITMIME",
    "ENHANCEDSTATUSCODES",
    "AUTH XOAUTH2 OAUTHBEARER",
];

/// Whom a [`MiniSmtp`] lets in, and whether it speaks implicit TLS.
#[derive(Clone)]
pub struct MiniSmtpConfig {
    pub validate: TokenValidator,
    pub tls: Option<Arc<ServerConfig>>,
}

#[derive(Default)]
struct Shared {
    logins: AtomicU64,
    failed_logins: AtomicU64,
    messages: AtomicU64,
    data_bytes: AtomicU64,
}

/// A running server; stops accepting and closes its sessions when dropped.
pub struct MiniSmtp {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl MiniSmtp {
    /// Binds `bind` (port 0 picks a free port) and serves in the background.
    pub async fn start(bind: SocketAddr, cfg: MiniSmtpConfig) -> io::Result<MiniSmtp> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let cancel = CancellationToken::new();
        let (s, c) = (shared.clone(), cancel.clone());
        let tls = cfg.tls.map(TlsAcceptor::from);
        let validate = cfg.validate;
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    _ = c.cancelled() => return,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(_) => {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let _ = tcp.set_nodelay(true);
                let (s, c, tls, v) = (s.clone(), c.clone(), tls.clone(), validate.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = c.cancelled() => {}
                        r = serve(tcp, tls, s, v) => {
                            if let Err(e) = r {
                                tracing::debug!(error = %e, "mini-smtp session ended with an error");
                            }
                        }
                    }
                });
            }
        });
        Ok(MiniSmtp {
            addr,
            shared,
            cancel,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Successful AUTH exchanges so far.
    pub fn logins(&self) -> u64 {
        self.shared.logins.load(Ordering::Relaxed)
    }
    /// Refused or malformed AUTH exchanges so far.
    pub fn failed_logins(&self) -> u64 {
        self.shared.failed_logins.load(Ordering::Relaxed)
    }
    /// Messages accepted (DATA completed).
    pub fn messages(&self) -> u64 {
        self.shared.messages.load(Ordering::Relaxed)
    }
    /// DATA bytes received so far, dot-stuffed as on the wire, without the final `.` line.
    pub fn data_bytes(&self) -> u64 {
        self.shared.data_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for MiniSmtp {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn serve(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    validate: TokenValidator,
) -> io::Result<()> {
    match tls {
        None => Conn::new(tcp, shared, validate).run().await,
        Some(a) => {
            Conn::new(a.accept(tcp).await?, shared, validate)
                .run()
                .await
        }
    }
}

struct Conn<S> {
    io: S,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    shared: Arc<Shared>,
    validate: TokenValidator,
    authed: bool,
}

/// `user` and bearer token from an XOAUTH2 (`user=U^Aauth=Bearer T^A^A`) or
/// OAUTHBEARER (`n,a=U,^Aauth=Bearer T^A^A`) initial response.
pub fn parse_sasl(mech: &str, raw: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut parts = text.split('\x01');
    let first = parts.next()?;
    let user = if mech.eq_ignore_ascii_case("XOAUTH2") {
        first.strip_prefix("user=")?.to_string()
    } else {
        let a = first.split(',').find_map(|f| f.strip_prefix("a="));
        a.unwrap_or("").replace("=2C", ",").replace("=3D", "=")
    };
    let token = parts.find_map(|p| p.strip_prefix("auth=Bearer "))?;
    Some((user, token.to_string()))
}

/// Where `CRLF.CRLF` ends in `data`, which follows a line start when `bol`: `Ok(end)`
/// (index just after it), or `Err((consumed, bol))` when more data is needed.
pub fn find_data_end(data: &[u8], bol: bool) -> Result<usize, (usize, bool)> {
    if bol {
        if data.starts_with(b".\r\n") {
            return Ok(3);
        }
        if b".\r\n".starts_with(data) {
            return Err((0, true));
        }
    }
    let mut from = 0;
    while let Some(p) = next_dot(data, from) {
        if p >= 2 && &data[p - 2..p] == b"\r\n" {
            if data.len() >= p + 3 {
                if &data[p + 1..p + 3] == b"\r\n" {
                    return Ok(p + 3);
                }
            } else if b"\r\n".starts_with(&data[p + 1..]) {
                // The dot may start the final line: keep it for the next read.
                return Err((p, true));
            }
        }
        from = p + 1;
    }
    // Keep a trailing CR so a CRLF split across reads is still seen.
    let keep = usize::from(data.last() == Some(&b'\r'));
    let bol = data.ends_with(b"\r\n") || (data.is_empty() && bol);
    Err((data.len() - keep, bol))
}

/// Index of the next `.` at or after `from`, eight bytes at a time.
fn next_dot(s: &[u8], from: usize) -> Option<usize> {
    const DOTS: u64 = 0x2e2e_2e2e_2e2e_2e2e;
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while i + 8 <= s.len() {
        let w = u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes")) ^ DOTS;
        if w.wrapping_sub(LO) & !w & HI != 0 {
            break;
        }
        i += 8;
    }
    s.get(i..)?.iter().position(|b| *b == b'.').map(|p| i + p)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    fn new(io: S, shared: Arc<Shared>, validate: TokenValidator) -> Self {
        Conn {
            io,
            buf: vec![0; BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            shared,
            validate,
            authed: false,
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::other("line too long"));
        }
        let n = self.io.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    async fn line(&mut self) -> io::Result<String> {
        loop {
            let data = &self.buf[self.start..self.end];
            if let Some(i) = data.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&data[..i]).into_owned();
                self.start += i + 2;
                return Ok(line);
            }
            if data.len() > MAX_LINE {
                return Err(io::Error::other("line too long"));
            }
            self.fill().await?;
        }
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        self.io.write_all(text.as_bytes()).await?;
        self.io.flush().await
    }

    async fn run(mut self) -> io::Result<()> {
        self.reply("220 mini-smtp ESMTP ready\r\n").await?;
        loop {
            let line = self.line().await?;
            let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    let mut r = String::from("250-mini-smtp\r\n");
                    for (i, e) in EHLO_EXTENSIONS.iter().enumerate() {
                        let sep = if i + 1 == EHLO_EXTENSIONS.len() {
                            ' '
                        } else {
                            '-'
                        };
                        r += &format!("250{sep}{e}\r\n");
                    }
                    self.reply(&r).await?
                }
                "HELO" => self.reply("250 mini-smtp\r\n").await?,
                "AUTH" => self.auth(arg).await?,
                "MAIL" | "RCPT" if !self.authed => {
                    self.reply("530 5.7.0 Authentication required\r\n").await?
                }
                "MAIL" | "RCPT" | "RSET" | "NOOP" => self.reply("250 2.0.0 OK\r\n").await?,
                "DATA" if !self.authed => {
                    self.reply("530 5.7.0 Authentication required\r\n").await?
                }
                "DATA" => {
                    self.reply("354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    self.swallow().await?;
                    self.reply("250 2.0.0 OK queued\r\n").await?
                }
                "QUIT" => {
                    self.reply("221 2.0.0 Bye\r\n").await?;
                    let _ = self.io.shutdown().await;
                    return Ok(());
                }
                _ => self.reply("500 5.5.2 Command not recognized\r\n").await?,
            }
        }
    }

    async fn auth(&mut self, arg: &str) -> io::Result<()> {
        let (mech, ir) = arg.split_once(' ').unwrap_or((arg, ""));
        if !["XOAUTH2", "OAUTHBEARER"].contains(&mech.to_ascii_uppercase().as_str()) {
            return self.reply("504 5.5.4 Unrecognized mechanism\r\n").await;
        }
        let ir = if ir.is_empty() {
            self.reply("334 \r\n").await?;
            self.line().await?
        } else {
            ir.to_string()
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let ok = b64
            .decode(ir.trim())
            .ok()
            .and_then(|raw| parse_sasl(mech, &raw))
            .is_some_and(|(user, token)| (self.validate)(&user, &token));
        if ok {
            self.authed = true;
            self.shared.logins.fetch_add(1, Ordering::Relaxed);
            return self.reply("235 2.7.0 Accepted\r\n").await;
        }
        self.shared.failed_logins.fetch_add(1, Ordering::Relaxed);
        let challenge = b64.encode(super::mini_imap::ERROR_CHALLENGE_JSON);
        self.reply(&format!("334 {challenge}\r\n")).await?;
        let _ = self.line().await?;
        self.reply("535 5.7.8 Authentication credentials invalid\r\n")
            .await
    }

    /// Reads DATA up to the final `.` line, counting and dropping it.
    async fn swallow(&mut self) -> io::Result<()> {
        let mut bol = true;
        let mut counted = 0u64;
        loop {
            match find_data_end(&self.buf[self.start..self.end], bol) {
                Ok(end) => {
                    counted += end as u64 - 3;
                    self.start += end;
                    break;
                }
                Err((consumed, b)) => {
                    counted += consumed as u64;
                    self.start += consumed;
                    bol = b;
                    self.fill().await?;
                }
            }
        }
        self.shared.messages.fetch_add(1, Ordering::Relaxed);
        self.shared.data_bytes.fetch_add(counted, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
#[path = "mini_smtp_tests.rs"]
mod tests;
