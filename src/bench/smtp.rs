//! Scenario 2b: SMTP DATA upload of 10–50 MB messages to the in-memory
//! `testkit::mini_smtp` upstream: direct (AUTH XOAUTH2) and through the proxy's SMTP
//! listener (AUTH PLAIN), alternating rounds, plain↔plain and TLS↔TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::client::Io;
use super::env::{Env, PASSWORD, Proxy, USER};
use super::proc::{ClientMeter, median, within};
use super::report::{Row, with_client};

/// A minimal SMTP submission client for the load.
pub struct Smtp {
    io: BufReader<Box<dyn Io>>,
    line: String,
}

impl Smtp {
    pub async fn connect(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> io::Result<Smtp> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match tls {
            None => Box::new(tcp),
            Some(cfg) => {
                let name = ServerName::try_from("localhost").expect("valid name");
                Box::new(TlsConnector::from(cfg.clone()).connect(name, tcp).await?)
            }
        };
        let mut s = Smtp {
            io: BufReader::with_capacity(8192, io),
            line: String::new(),
        };
        s.expect("220").await?;
        s.send("EHLO bench.local", "250").await?;
        Ok(s)
    }

    /// Reads one reply (all its lines) and checks its code.
    async fn expect(&mut self, code: &str) -> io::Result<()> {
        loop {
            self.line.clear();
            if self.io.read_line(&mut self.line).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if !self.line.starts_with(code) {
                // Never echo AUTH payloads: only the reply is shown.
                return Err(io::Error::other(format!(
                    "expected {code}, got {}",
                    self.line.trim_end()
                )));
            }
            if self.line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }

    /// Writes `data` and flushes it: over TLS, tokio-rustls may keep the last records
    /// of a write in rustls' send buffer (when the socket is full), and nothing else
    /// sends them while we wait for the reply.
    async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let w = self.io.get_mut();
        w.write_all(data).await?;
        w.flush().await
    }

    async fn send(&mut self, cmd: &str, code: &str) -> io::Result<()> {
        self.write(format!("{cmd}\r\n").as_bytes()).await?;
        self.expect(code).await
    }

    pub async fn auth_plain(&mut self, user: &str, password: &str) -> io::Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let ir = b64.encode(format!("\0{user}\0{password}"));
        self.send(&format!("AUTH PLAIN {ir}"), "235").await
    }

    pub async fn auth_xoauth2(&mut self, user: &str, token: &str) -> io::Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let ir = b64.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"));
        self.send(&format!("AUTH XOAUTH2 {ir}"), "235").await
    }

    /// Sends one message of `chunks` × `chunk` bytes (the chunk holds whole lines
    /// and no line starts with a dot); the envelope is pipelined.
    pub async fn message(&mut self, chunk: &[u8], chunks: usize) -> io::Result<u64> {
        self.write(b"MAIL FROM:<bench@example.com>\r\nRCPT TO:<sink@example.net>\r\nDATA\r\n")
            .await?;
        self.expect("250").await?;
        self.expect("250").await?;
        self.expect("354").await?;
        let w = self.io.get_mut();
        for _ in 0..chunks {
            w.write_all(chunk).await?;
        }
        self.write(b".\r\n").await?;
        self.expect("250").await?;
        Ok((chunk.len() * chunks) as u64)
    }

    pub async fn quit(mut self) -> io::Result<()> {
        self.send("QUIT", "221").await?;
        let _ = self.io.get_mut().shutdown().await;
        Ok(())
    }
}

/// About 256 KiB of 76-column lines.
pub fn chunk() -> Vec<u8> {
    let line = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n";
    line.repeat(256 * 1024 / line.len())
}

/// Message sizes in MB, cycled.
const SIZES_MB: [u64; 5] = [10, 20, 30, 40, 50];

async fn round(
    env: &Env,
    p: &Proxy,
    tls: bool,
    via_proxy: bool,
    total: u64,
    token: &str,
) -> io::Result<(f64, u64)> {
    let addr = match (tls, via_proxy) {
        (false, false) => env.smtp.addr(),
        (true, false) => env.smtps.addr(),
        (false, true) => p.smtp,
        (true, true) => p.smtps,
    };
    let mut c = Smtp::connect(addr, tls.then_some(&env.tls)).await?;
    if via_proxy {
        c.auth_plain(USER, PASSWORD).await?;
    } else {
        c.auth_xoauth2(USER, token).await?;
    }
    let chunk = chunk();
    let t = Instant::now();
    let (mut sent, mut i) = (0, 0);
    while sent < total {
        let chunks = (SIZES_MB[i % SIZES_MB.len()] * 1_000_000).div_ceil(chunk.len() as u64);
        sent += c.message(&chunk, chunks as usize).await?;
        i += 1;
    }
    let secs = t.elapsed().as_secs_f64();
    c.quit().await?;
    Ok((sent as f64 / 1e6 / secs, sent))
}

pub async fn run(
    env: &Env,
    p: &Proxy,
    total: u64,
    rounds: usize,
    token: &str,
) -> io::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for tls in [false, true] {
        let up = if tls { &env.smtps } else { &env.smtp };
        let (mut direct, mut proxy) = (Vec::new(), Vec::new());
        let (mut proxy_cpu, mut proxy_bytes, mut busy) = (0.0, 0.0, 0.0f64);
        let (mut sent, up0) = (0, up.data_bytes());
        for _ in 0..rounds {
            let m = ClientMeter::start();
            let (mbs, n) = within("direct round", round(env, p, tls, false, total, token)).await?;
            busy = busy.max(m.busy());
            direct.push(mbs);
            sent += n;
            let (c0, m) = (p.cpu(), ClientMeter::start());
            let (mbs, n) = within("proxy round", round(env, p, tls, true, total, token)).await?;
            busy = busy.max(m.busy());
            proxy_cpu += p.cpu() - c0;
            proxy_bytes += n as f64;
            proxy.push(mbs);
            sent += n;
        }
        let arrived = up.data_bytes() - up0;
        let label = if tls { "TLS<->TLS" } else { "plain<->plain" };
        let mut note = format!("proxy {:.2} CPU s/GB", proxy_cpu / (proxy_bytes / 1e9));
        if arrived != sent {
            note += &format!("; upstream counted {arrived} of {sent} bytes");
        }
        rows.push(
            Row::new(
                "2b SMTP DATA upload",
                &format!("{label} throughput"),
                "MB/s",
                Some(median(&direct)),
                median(&proxy),
            )
            .note(with_client(note, busy)),
        );
    }
    Ok(rows)
}
