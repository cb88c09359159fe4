//! The one async loop that runs any sans-I/O machine over a [`Stream`]: it performs
//! the machine's writes, reads when it needs input, upgrades to TLS when it asks, and
//! enforces the deadline. Machines never see sockets or clocks.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, timeout_at};
use tokio_rustls::rustls::{ClientConfig, ServerConfig};

use crate::proto::{Interrupt, Io};
use crate::stream::Stream;
use zeroize::Zeroize;

/// A sans-I/O protocol machine.
pub trait Machine {
    type Event;
    type Error: std::fmt::Display;
    fn feed(&mut self, bytes: &[u8]);
    fn next(&mut self) -> Result<Self::Event, Interrupt<Self::Error>>;
    fn tls_established(&mut self);
}

/// What a STARTTLS request from the machine turns into.
#[derive(Clone)]
pub enum Upgrade {
    /// We are the server (downstream side).
    Server(Arc<ServerConfig>),
    /// We are the client (upstream side), verifying this name.
    Client(Arc<ClientConfig>, ServerName<'static>),
    /// No TLS available: a machine asking for it is a bug, reported as an error.
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError<E: std::fmt::Display> {
    #[error("peer closed the connection")]
    Eof,
    #[error("connection closed by the protocol (logout or too many errors)")]
    Closed,
    #[error("timed out")]
    Timeout,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("TLS handshake failed: {0}")]
    Tls(io::Error),
    #[error("{0}")]
    Machine(E),
}

/// Size of one read during the pre-auth phase. Lines are bounded by the machines.
const READ_CHUNK: usize = 4096;

/// Reads once from `stream` into `m`; `Ok(0)` at end of stream.
///
/// The read buffer lives on the stack of one `poll` only, never in the future: a
/// connection waiting for input (an idle pre-auth client) holds no read buffer at all,
/// which keeps 10,000 idle connections a few KiB each.
async fn read_into<M: Machine>(stream: &mut Stream, m: &mut M) -> io::Result<usize> {
    std::future::poll_fn(|cx| {
        let mut chunk = [0u8; READ_CHUNK];
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n > 0 {
                    m.feed(buf.filled());
                    // The chunk may hold a password (a LOGIN line): wipe the copy.
                    chunk[..n].zeroize();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Runs `m` over `stream` until it produces an event, or fails, or `deadline` passes.
pub async fn drive<M: Machine>(
    stream: &mut Stream,
    m: &mut M,
    upgrade: &Upgrade,
    deadline: Instant,
) -> Result<M::Event, DriveError<M::Error>> {
    loop {
        match m.next() {
            Ok(event) => return Ok(event),
            Err(Interrupt::Error(e)) => return Err(DriveError::Machine(e)),
            Err(Interrupt::Io(Io::Write(bytes))) => {
                timed(deadline, async {
                    stream.write_all(&bytes).await?;
                    stream.flush().await
                })
                .await??;
            }
            Err(Interrupt::Io(Io::NeedInput)) => {
                // Feeds the machine as it reads: the machine owns the only copy.
                let n = timed(deadline, read_into(stream, m)).await??;
                if n == 0 {
                    return Err(DriveError::Eof);
                }
            }
            Err(Interrupt::Io(Io::StartTls)) => {
                let res = match upgrade {
                    Upgrade::Server(cfg) => timed(deadline, stream.accept_tls(cfg.clone())).await?,
                    Upgrade::Client(cfg, name) => {
                        timed(deadline, stream.connect_tls(cfg.clone(), name.clone())).await?
                    }
                    Upgrade::Unavailable => Err(io::Error::other(
                        "STARTTLS requested but no TLS is configured",
                    )),
                };
                res.map_err(DriveError::Tls)?;
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) => {
                let _ = timed::<_, M::Error>(deadline, stream.shutdown()).await;
                return Err(DriveError::Closed);
            }
        }
    }
}

async fn timed<T, E: std::fmt::Display>(
    deadline: Instant,
    f: impl std::future::Future<Output = T>,
) -> Result<T, DriveError<E>> {
    timeout_at(deadline, f)
        .await
        .map_err(|_| DriveError::Timeout)
}
