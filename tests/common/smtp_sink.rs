//! A tiny SMTP server on loopback that accepts every message and records its
//! envelope and DATA bytes exactly. Dovecot's submission service relays to it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest command or DATA line the sink accepts.
const MAX_LINE: usize = 64 * 1024;

/// One message as the sink received it. Dovecot's submission service prepends a
/// `Received:` header to what the client sent.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Argument of the last EHLO/HELO.
    pub helo: String,
    /// Reverse path without angle brackets (empty for `<>`).
    pub mail_from: String,
    /// Everything after the reverse path on the MAIL line (e.g. `SIZE=123 BODY=8BITMIME`).
    pub mail_params: String,
    /// Forward paths without angle brackets, in order.
    pub rcpt_to: Vec<String>,
    /// DATA exactly as on the wire (dot-stuffed), without the final `.\r\n` line.
    pub raw_data: Vec<u8>,
    /// The message: `raw_data` with the dot-stuffing removed.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for ReceivedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedMessage")
            .field("helo", &self.helo)
            .field("mail_from", &self.mail_from)
            .field("mail_params", &self.mail_params)
            .field("rcpt_to", &self.rcpt_to)
            .field("data", &String::from_utf8_lossy(&self.data))
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<ReceivedMessage>>,
    arrived: Notify,
    connections: AtomicU64,
}

/// The running sink; stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl SmtpSink {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind SMTP sink");
        let addr = listener.local_addr().expect("sink addr");
        let shared = Arc::new(Shared::default());
        let cancel = CancellationToken::new();
        let (s, c) = (shared.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = c.cancelled() => return,
                    r = listener.accept() => match r { Ok((stream, _)) => stream, Err(_) => continue },
                };
                s.connections.fetch_add(1, Ordering::SeqCst);
                let (s, c) = (s.clone(), c.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = c.cancelled() => {}
                        _ = session(stream, &s) => {}
                    }
                });
            }
        });
        SmtpSink {
            addr,
            shared,
            cancel,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Messages received so far.
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived; panics after `timeout`.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let msgs = self.messages();
            if msgs.len() >= n {
                return msgs;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "SMTP sink: {} of {n} messages after {timeout:?}",
                    msgs.len()
                );
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Splits `<addr> params` into (addr, params).
fn path_and_params(arg: &str) -> (String, String) {
    let arg = arg.trim();
    match arg.strip_prefix('<').and_then(|r| r.split_once('>')) {
        Some((addr, rest)) => (addr.to_owned(), rest.trim().to_owned()),
        None => match arg.split_once(' ') {
            Some((addr, rest)) => (addr.to_owned(), rest.trim().to_owned()),
            None => (arg.to_owned(), String::new()),
        },
    }
}

fn unstuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for line in raw.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.test ESMTP oauth-mail-proxy test sink\r\n")
        .await?;
    let mut helo = String::new();
    let mut from: Option<(String, String)> = None;
    let mut rcpts: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if (&mut r)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?
            == 0
        {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let (verb, arg) = text.split_once(' ').unwrap_or((text, ""));
        let verb = verb.to_ascii_uppercase();
        let upper_arg = arg.to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => {
                helo = arg.trim().to_owned();
                b"250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 104857600\r\n250 ENHANCEDSTATUSCODES\r\n"
            }
            "HELO" => {
                helo = arg.trim().to_owned();
                b"250 sink.test\r\n"
            }
            "MAIL" if upper_arg.starts_with("FROM:") => {
                from = Some(path_and_params(&arg[5..]));
                rcpts.clear();
                b"250 2.1.0 Ok\r\n"
            }
            "RCPT" if upper_arg.starts_with("TO:") => {
                if from.is_none() {
                    b"503 5.5.1 MAIL first\r\n"
                } else {
                    rcpts.push(path_and_params(&arg[3..]).0);
                    b"250 2.1.5 Ok\r\n"
                }
            }
            "DATA" if from.is_none() || rcpts.is_empty() => b"503 5.5.1 No valid recipients\r\n",
            "DATA" => {
                w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut raw = Vec::new();
                loop {
                    line.clear();
                    if (&mut r)
                        .take(MAX_LINE as u64)
                        .read_until(b'\n', &mut line)
                        .await?
                        == 0
                    {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    raw.extend_from_slice(&line);
                }
                let (mail_from, mail_params) = from.take().unwrap_or_default();
                let msg = ReceivedMessage {
                    helo: helo.clone(),
                    mail_from,
                    mail_params,
                    rcpt_to: std::mem::take(&mut rcpts),
                    data: unstuff(&raw),
                    raw_data: raw,
                };
                shared.messages.lock().unwrap().push(msg);
                shared.arrived.notify_waiters();
                b"250 2.0.0 Ok: queued\r\n"
            }
            "RSET" => {
                from = None;
                rcpts.clear();
                b"250 2.0.0 Ok\r\n"
            }
            "NOOP" => b"250 2.0.0 Ok\r\n",
            "QUIT" => {
                w.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not recognized\r\n",
        };
        w.write_all(reply).await?;
    }
}
