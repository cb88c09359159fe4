//! A line-oriented test client over plain TCP or TLS (with in-place STARTTLS), and
//! the SASL initial responses the tests send. Every read has a timeout, and every
//! failure panics with what was going on: these are test helpers.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;

use super::certs::client_config;

/// How long a single read may wait by default.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Anything a [`LineClient`] can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Reads CRLF lines and exact byte counts, writes bytes; panics on timeout or EOF.
pub struct LineClient {
    io: BufReader<Box<dyn Io>>,
    timeout: Duration,
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Wraps `io` in TLS as a client of `localhost`, trusting only `ca_pem`.
pub async fn tls_handshake<T: Io + 'static>(
    io: T,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<T> {
    let connector = TlsConnector::from(client_config(ca_pem));
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(IO_TIMEOUT, connector.connect(name, io))
        .await
        .expect("TLS handshake timed out")
        .expect("TLS handshake failed")
}

impl LineClient {
    pub fn new(io: impl Io + 'static) -> Self {
        Self {
            io: BufReader::new(Box::new(io)),
            timeout: IO_TIMEOUT,
        }
    }

    /// Plain TCP to `127.0.0.1:port`.
    pub async fn connect(port: u16) -> Self {
        let s = TcpStream::connect(local(port))
            .await
            .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
        s.set_nodelay(true).expect("nodelay");
        Self::new(s)
    }

    /// Implicit TLS to `127.0.0.1:port` (SNI `localhost`), trusting only `ca_pem`.
    pub async fn connect_tls(port: u16, ca_pem: &str) -> Self {
        let s = TcpStream::connect(local(port))
            .await
            .unwrap_or_else(|e| panic!("connect to port {port}: {e}"));
        s.set_nodelay(true).expect("nodelay");
        Self::new(tls_handshake(s, ca_pem).await)
    }

    /// Upgrades the connection in place (after the protocol's STARTTLS/STLS reply).
    /// Panics when the server sent bytes after its reply (a STARTTLS injection).
    pub async fn start_tls(self, ca_pem: &str) -> Self {
        assert!(
            self.io.buffer().is_empty(),
            "bytes buffered before the TLS handshake: {:?}",
            self.io.buffer()
        );
        let timeout = self.timeout;
        let mut c = Self::new(tls_handshake(self.io.into_inner(), ca_pem).await);
        c.timeout = timeout;
        c
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// One line including its line ending.
    pub async fn read_line_bytes(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let n = tokio::time::timeout(self.timeout, self.io.read_until(b'\n', &mut line))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "timed out waiting for a line; partial: {:?}",
                    String::from_utf8_lossy(&line)
                )
            })
            .expect("read error");
        assert!(n > 0, "connection closed while waiting for a line");
        line
    }

    /// One line without its CRLF (lossy UTF-8).
    pub async fn read_line(&mut self) -> String {
        let line = self.read_line_bytes().await;
        String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_owned()
    }

    pub async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(self.timeout, self.io.read_exact(&mut buf))
            .await
            .expect("timed out in read_exact")
            .expect("read_exact failed");
        buf
    }

    /// True when the peer closes (EOF or reset) within the timeout without sending
    /// anything more; panics if data arrives.
    pub async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(self.timeout, self.io.read(&mut buf)).await {
            Err(_) => false,
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(n)) => panic!(
                "expected close, got {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8]) {
        let io = self.io.get_mut();
        tokio::time::timeout(self.timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .expect("write timed out")
        .expect("write failed");
    }

    /// Writes `line` followed by CRLF.
    pub async fn send_line(&mut self, line: &str) {
        self.write_all(format!("{line}\r\n").as_bytes()).await;
    }
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<u8> {
    STANDARD
        .decode(s.trim())
        .unwrap_or_else(|e| panic!("bad base64 {s:?}: {e}"))
}

/// SASL XOAUTH2 initial response, base64: `user=U^Aauth=Bearer T^A^A`.
pub fn xoauth2(user: &str, token: &str) -> String {
    b64(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

/// SASL OAUTHBEARER (RFC 7628) initial response, base64, with host and port.
pub fn oauthbearer(user: &str, token: &str, port: u16) -> String {
    let user = user.replace('=', "=3D").replace(',', "=2C");
    b64(format!(
        "n,a={user},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer {token}\x01\x01"
    ))
}

/// SASL PLAIN initial response, base64: `\0user\0password`.
pub fn plain(user: &str, password: &str) -> String {
    b64(format!("\0{user}\0{password}"))
}

/// Parses the JSON that Dovecot sends, base64-encoded, in the continuation after a
/// failed XOAUTH2/OAUTHBEARER.
pub fn error_json(continuation: &str) -> serde_json::Value {
    serde_json::from_slice(&unb64(continuation))
        .unwrap_or_else(|e| panic!("continuation {continuation:?} is not base64 JSON: {e}"))
}
