//! A scriptable, misbehaving upstream mail server on `127.0.0.1:0`.
//!
//! Each accepted connection runs a script of [`Step`]s (the i-th connection the i-th
//! script, the last one repeating): send bytes, expect a line, upgrade to TLS, sleep,
//! close, reset, hold. Everything the proxy sent is recorded as timestamped
//! [`Event`]s, so a test can assert what was (and was not) sent, and when the proxy
//! gave up. [`proxy_rig`] runs the real binary against it.

pub mod proxy_rig;
pub mod scripts;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// One action of a connection's script.
#[derive(Clone)]
pub enum Step {
    /// Write these bytes (in one write).
    Send(Vec<u8>),
    /// Read a line; it must start with this prefix (ASCII case-insensitive), else the
    /// script records [`Kind::Mismatch`] and closes.
    Expect(&'static str),
    /// Read a line, whatever it is.
    ExpectAny,
    /// TLS handshake as the server (the bytes read so far but not consumed are
    /// dropped).
    StartTls(Arc<ServerConfig>),
    Sleep(Duration),
    /// Close the connection normally (FIN).
    Close,
    /// Close with a TCP reset (SO_LINGER 0).
    Reset,
    /// Never answer, never read: the connection stays open until the proxy closes it
    /// (noticed only by the kernel) or the fake is dropped.
    Hold,
    /// Read and record everything until EOF, then record [`Kind::Eof`].
    ReadUntilEof,
}

/// `Step::Send` of a text.
pub fn send(text: &str) -> Step {
    Step::Send(text.as_bytes().to_vec())
}

/// What happened on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Accepted,
    /// A line the proxy sent (lossy UTF-8, line ending removed).
    Line(String),
    /// Bytes the proxy sent while `ReadUntilEof` ran.
    Data(usize),
    Sent(usize),
    TlsEstablished,
    TlsFailed(String),
    /// The proxy closed (or reset) its side.
    Eof,
    Mismatch {
        expected: &'static str,
        got: String,
    },
    Closed,
    Reset,
}

/// One recorded event, with the connection's number (from 0) and when it happened.
#[derive(Debug, Clone)]
pub struct Event {
    pub conn: usize,
    pub at: Instant,
    pub kind: Kind,
}

type Events = Arc<Mutex<Vec<Event>>>;

type Scripts = Arc<Mutex<Vec<Vec<Step>>>>;

/// The running fake; connections and the accept loop end when it is dropped.
pub struct FakeUpstream {
    pub addr: std::net::SocketAddr,
    events: Events,
    scripts: Scripts,
    task: tokio::task::JoinHandle<()>,
}

impl FakeUpstream {
    /// Every connection runs `script`.
    pub async fn start(script: Vec<Step>) -> FakeUpstream {
        Self::start_each(vec![script]).await
    }

    /// The next connections run `scripts[0]`, `scripts[1]`, ...; once one is left,
    /// every further connection runs it.
    pub async fn start_each(scripts: Vec<Vec<Step>>) -> FakeUpstream {
        Self::start_each_on(0, scripts).await
    }

    /// [`Self::start_each`] on `127.0.0.1:port` (0: any free port).
    pub async fn start_each_on(port: u16, scripts: Vec<Vec<Step>>) -> FakeUpstream {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind fake");
        let addr = listener.local_addr().expect("fake addr");
        let events: Events = Arc::default();
        let ev = events.clone();
        let queue: Scripts = Arc::default();
        let q = queue.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            let mut n = 0;
            while let Ok((tcp, _)) = listener.accept().await {
                let script = {
                    let mut q = q.lock().unwrap();
                    if q.len() > 1 {
                        q.remove(0)
                    } else {
                        q[0].clone()
                    }
                };
                let rec = Recorder {
                    conn: n,
                    events: ev.clone(),
                };
                rec.push(Kind::Accepted);
                conns.spawn(run(tcp, script, rec));
                n += 1;
            }
        });
        let fake = FakeUpstream {
            addr,
            events,
            scripts: queue,
            task,
        };
        fake.set_scripts(scripts);
        fake
    }

    /// Replaces the scripts of the connections still to come (see [`Self::start_each`]).
    pub fn set_scripts(&self, scripts: Vec<Vec<Step>>) {
        assert!(!scripts.is_empty(), "at least one script");
        *self.scripts.lock().unwrap() = scripts;
    }

    /// Every further connection runs `script`.
    pub fn set_script(&self, script: Vec<Step>) {
        self.set_scripts(vec![script]);
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.kinds()
            .iter()
            .filter(|k| **k == Kind::Accepted)
            .count()
    }

    pub fn kinds(&self) -> Vec<Kind> {
        self.events().into_iter().map(|e| e.kind).collect()
    }

    /// Every line the proxy sent, on every connection, one per line.
    pub fn received(&self) -> String {
        let mut out = String::new();
        for k in self.kinds() {
            if let Kind::Line(l) = k {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }

    /// Whether any line the proxy sent looks like a credential (a SASL command or
    /// an XOAUTH2/OAUTHBEARER mechanism name, or a base64 SASL response that decodes to
    /// one).
    pub fn credential_sent(&self) -> bool {
        self.received().lines().any(|l| {
            let u = l.to_ascii_uppercase();
            let decoded = b64_lossy(l.trim());
            ["AUTH", "XOAUTH2", "OAUTHBEARER", "LOGIN", "USER ", "PASS "]
                .iter()
                .any(|w| u.contains(w))
                || decoded.contains("auth=Bearer")
        })
    }

    /// Waits until an event matches `pred` (at most `limit`); returns it.
    pub async fn wait_for(&self, limit: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `text` base64-decoded (empty when it is not base64), lossy UTF-8.
fn b64_lossy(text: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[derive(Clone)]
struct Recorder {
    conn: usize,
    events: Events,
}

impl Recorder {
    fn push(&self, kind: Kind) {
        self.events.lock().unwrap().push(Event {
            conn: self.conn,
            at: Instant::now(),
            kind,
        });
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The connection as the script sees it: plain, or TLS after `StartTls`.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Gone,
}

impl Conn {
    fn io(&mut self) -> &mut dyn Io {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.as_mut(),
            Conn::Gone => unreachable!("used after a failed TLS handshake"),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
            Conn::Gone => unreachable!("used after a failed TLS handshake"),
        }
    }
}

/// Runs one connection's script.
async fn run(tcp: TcpStream, script: Vec<Step>, rec: Recorder) {
    let _ = tcp.set_nodelay(true);
    let mut conn = Conn::Plain(tcp);
    let mut buf: Vec<u8> = Vec::new();
    for step in script {
        match step {
            Step::Send(bytes) => {
                if conn.io().write_all(&bytes).await.is_err() || conn.io().flush().await.is_err() {
                    return rec.push(Kind::Eof);
                }
                rec.push(Kind::Sent(bytes.len()));
            }
            Step::Expect(prefix) => match read_line(&mut conn, &mut buf).await {
                None => return rec.push(Kind::Eof),
                Some(line) => {
                    rec.push(Kind::Line(line.clone()));
                    let head = line.get(..prefix.len()).unwrap_or(&line);
                    if !head.eq_ignore_ascii_case(prefix) {
                        rec.push(Kind::Mismatch {
                            expected: prefix,
                            got: line,
                        });
                        return rec.push(Kind::Closed);
                    }
                }
            },
            Step::ExpectAny => match read_line(&mut conn, &mut buf).await {
                None => return rec.push(Kind::Eof),
                Some(line) => rec.push(Kind::Line(line)),
            },
            Step::StartTls(cfg) => {
                buf.clear();
                let Conn::Plain(tcp) = std::mem::replace(&mut conn, Conn::Gone) else {
                    panic!("StartTls twice in a script");
                };
                match TlsAcceptor::from(cfg).accept(tcp).await {
                    Ok(tls) => {
                        conn = Conn::Tls(Box::new(tls));
                        rec.push(Kind::TlsEstablished);
                    }
                    Err(e) => return rec.push(Kind::TlsFailed(e.to_string())),
                }
            }
            Step::Sleep(d) => tokio::time::sleep(d).await,
            Step::Close => {
                let _ = conn.io().shutdown().await;
                return rec.push(Kind::Closed);
            }
            Step::Reset => {
                // Deprecated because a non-zero linger blocks on drop; zero does not.
                #[allow(deprecated)]
                let _ = conn.tcp().set_linger(Some(Duration::ZERO));
                drop(conn);
                return rec.push(Kind::Reset);
            }
            Step::Hold => std::future::pending::<()>().await,
            Step::ReadUntilEof => {
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    match conn.io().read(&mut chunk).await {
                        Ok(0) | Err(_) => return rec.push(Kind::Eof),
                        Ok(n) => rec.push(Kind::Data(n)),
                    }
                }
            }
        }
    }
    // The script ended: keep the connection open, reading, so the proxy decides.
    let mut chunk = [0u8; 4096];
    loop {
        match conn.io().read(&mut chunk).await {
            Ok(0) | Err(_) => return rec.push(Kind::Eof),
            Ok(n) => rec.push(Kind::Data(n)),
        }
    }
}

/// Reads one line (without its line ending); `None` on EOF or error.
async fn read_line(conn: &mut Conn, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line);
            return Some(text.trim_end_matches(['\r', '\n']).to_owned());
        }
        let mut chunk = [0u8; 4096];
        match conn.io().read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
