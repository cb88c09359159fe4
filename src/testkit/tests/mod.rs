//! Transcript tests for [`super::mini_imap`]: raw sockets, TLS, Python's imaplib, curl.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use super::mini_imap::{ERROR_CHALLENGE_JSON, GREETING, MAX_LINE};
use super::{MiniImap, MiniImapConfig};

const USER: &str = "alice@example.com";
const TOKEN: &str = "good-token";
const STEP: Duration = Duration::from_secs(10);

fn messages() -> Arc<Vec<Bytes>> {
    let big_body: String = (0..3000)
        .map(|i| format!("line {i:05} of a long message body\r\n"))
        .collect();
    Arc::new(vec![
        Bytes::from_static(
            b"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: one\r\n\r\nHello Alice.\r\n",
        ),
        Bytes::from(format!(
            "From: carol@example.com\r\nSubject: big\r\n\r\n{big_body}"
        )),
        // Looks like protocol on purpose: literals must carry it untouched.
        Bytes::from_static(b"Subject: tricky\r\n\r\n) * BYE\r\na1 OK {5}\r\n\r\n.\r\n"),
    ])
}

fn config(tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>) -> MiniImapConfig {
    MiniImapConfig {
        validate: Arc::new(|user, token| (user == USER || user == "a,b=c") && token == TOKEN),
        messages: messages(),
        tls,
    }
}

async fn start() -> MiniImap {
    MiniImap::start("127.0.0.1:0".parse().unwrap(), config(None))
        .await
        .unwrap()
}

fn xoauth2(user: &str, token: &str) -> String {
    STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

fn oauthbearer(authzid: &str, token: &str) -> String {
    STANDARD.encode(format!(
        "n,a={authzid},\x01host=127.0.0.1\x01port=143\x01auth=Bearer {token}\x01\x01"
    ))
}

/// A line-oriented test client over any stream.
struct Client<S> {
    io: BufStream<S>,
}

impl Client<TcpStream> {
    async fn connect(addr: SocketAddr) -> Self {
        Client::over(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn over(stream: S) -> Self {
        Client {
            io: BufStream::new(stream),
        }
    }

    /// Next line, CRLF checked and removed.
    async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(STEP, self.io.read_until(b'\n', &mut buf))
            .await
            .expect("server too slow")
            .unwrap();
        assert!(n > 0, "unexpected EOF");
        assert!(buf.ends_with(b"\r\n"), "line without CRLF: {buf:?}");
        buf.truncate(buf.len() - 2);
        String::from_utf8(buf).unwrap()
    }

    async fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(STEP, self.io.read_exact(&mut buf))
            .await
            .expect("server too slow")
            .unwrap();
        buf
    }

    async fn eof(&mut self) {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(STEP, self.io.read_to_end(&mut buf))
            .await
            .expect("server did not close")
            .unwrap_or(0);
        assert_eq!(n, 0, "unexpected data: {:?}", String::from_utf8_lossy(&buf));
    }

    async fn raw(&mut self, data: &[u8]) {
        self.io.write_all(data).await.unwrap();
        self.io.flush().await.unwrap();
    }

    async fn send(&mut self, line: &str) {
        self.raw(format!("{line}\r\n").as_bytes()).await;
    }

    /// Sends a command and returns every line up to and including the tagged one.
    async fn cmd(&mut self, line: &str) -> Vec<String> {
        self.send(line).await;
        self.until_tagged(line.split(' ').next().unwrap()).await
    }

    async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    /// Reads FETCH responses up to the tagged line; each literal is returned with the
    /// text around it: (text before the literal, literal, text after), one per message.
    async fn fetch_literals(&mut self, tag: &str) -> (Vec<(String, Vec<u8>, String)>, String) {
        let mut out = Vec::new();
        loop {
            let l = self.line().await;
            if l.starts_with(&format!("{tag} ")) {
                return (out, l);
            }
            let open = l.rfind('{').expect("a literal");
            let n: usize = l[open + 1..l.len() - 1].parse().unwrap();
            let data = self.bytes(n).await;
            let after = self.line().await;
            out.push((l[..open].to_string(), data, after));
        }
    }
}

mod clients;
mod sessions;
mod transcripts;
