//! The load client: a minimal, efficient IMAP client (one reused read buffer, large
//! reads, literals counted and discarded, never copied).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

const BUF: usize = 256 * 1024;

pub struct Client {
    io: Box<dyn Io>,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    tag: u32,
    /// Literal bytes received by the last command.
    pub literal_bytes: u64,
}

fn bad(msg: String) -> io::Error {
    io::Error::other(msg)
}

impl Client {
    /// Connects (implicit TLS to "localhost" when `tls` is given) and reads the greeting.
    pub async fn connect(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> io::Result<Client> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match tls {
            None => Box::new(tcp),
            Some(cfg) => {
                let name = ServerName::try_from("localhost").expect("valid name");
                Box::new(TlsConnector::from(cfg.clone()).connect(name, tcp).await?)
            }
        };
        Self::with_small_buffer(io, BUF).greeting().await
    }

    /// Connects with a small read buffer (idle-session scenarios).
    pub async fn connect_small(
        addr: SocketAddr,
        tls: Option<&Arc<ClientConfig>>,
    ) -> io::Result<Client> {
        let mut c = Self::connect(addr, tls).await?;
        c.buf = vec![0; 1024].into_boxed_slice();
        Ok(c)
    }

    fn with_small_buffer(io: Box<dyn Io>, size: usize) -> Client {
        Client {
            io,
            buf: vec![0; size].into_boxed_slice(),
            start: 0,
            end: 0,
            tag: 0,
            literal_bytes: 0,
        }
    }

    async fn greeting(mut self) -> io::Result<Client> {
        let line = self.read_line().await?;
        if !line.starts_with("* OK") {
            return Err(bad(format!("greeting: {line}")));
        }
        Ok(self)
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.io.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf[self.start..self.end]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                let line = String::from_utf8_lossy(&self.buf[self.start..self.start + i]).into();
                self.start += i + 2;
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn skip(&mut self, mut n: u64) -> io::Result<()> {
        loop {
            let have = (self.end - self.start) as u64;
            let take = have.min(n);
            self.start += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("b{}", self.tag)
    }

    /// Reads responses up to the tagged one, discarding literals; `Ok` only for OK.
    async fn finish(&mut self, tag: &str) -> io::Result<String> {
        self.literal_bytes = 0;
        loop {
            let line = self.read_line().await?;
            if let Some(n) = literal_len(&line) {
                self.skip(n).await?;
                self.literal_bytes += n;
                continue;
            }
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                return if rest.starts_with("OK") {
                    Ok(line)
                } else {
                    Err(bad(line))
                };
            }
        }
    }

    /// Writes `data` and flushes it. Over TLS the flush is required: tokio-rustls may
    /// keep the last records of a write in rustls' send buffer (when the socket is
    /// full), and nothing else sends them while we wait for the reply.
    async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.io.write_all(data).await?;
        self.io.flush().await
    }

    /// Sends `cmd` and waits for its tagged OK.
    pub async fn command(&mut self, cmd: &str) -> io::Result<String> {
        let tag = self.next_tag();
        self.send(format!("{tag} {cmd}\r\n").as_bytes()).await?;
        self.finish(&tag).await
    }

    pub async fn login(&mut self, user: &str, password: &str) -> io::Result<String> {
        self.command(&format!("LOGIN {user} {password}")).await
    }

    pub async fn xoauth2(&mut self, user: &str, token: &str) -> io::Result<String> {
        let ir = base64::engine::general_purpose::STANDARD
            .encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"));
        self.command(&format!("AUTHENTICATE XOAUTH2 {ir}")).await
    }

    /// APPENDs a message of `size` bytes (LITERAL+), written from `chunk` repeated.
    pub async fn append(&mut self, size: u64, chunk: &[u8]) -> io::Result<()> {
        let tag = self.next_tag();
        self.io
            .write_all(format!("{tag} APPEND INBOX {{{size}+}}\r\n").as_bytes())
            .await?;
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            self.io.write_all(&chunk[..n]).await?;
            left -= n as u64;
        }
        // The end of the command, and everything still buffered in rustls.
        self.send(b"\r\n").await?;
        self.finish(&tag).await.map(|_| ())
    }

    pub async fn logout(mut self) -> io::Result<()> {
        let tag = self.next_tag();
        self.send(format!("{tag} LOGOUT\r\n").as_bytes()).await?;
        let r = self.finish(&tag).await.map(|_| ());
        let _ = self.io.shutdown().await;
        r
    }
}

fn literal_len(line: &str) -> Option<u64> {
    let inner = line.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}
