//! One direction of a plain↔plain splice through `splice(2)`: socket → pipe → socket,
//! the bytes never enter user space. The pipe is borrowed from the pool when the source
//! becomes readable and given back (empty) when it would block, so idle sessions hold
//! no pipe (each costs two file descriptors).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use rustix::pipe::{SpliceFlags, splice};
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

use super::pool::{self, Pipe};

#[derive(Default)]
pub struct PipedDir {
    pipe: Option<Pipe>,
    in_pipe: usize,
    read_done: bool,
    /// Bytes written to the destination.
    pub written: u64,
}

fn flags() -> SpliceFlags {
    SpliceFlags::MOVE | SpliceFlags::NONBLOCK
}

impl PipedDir {
    /// Whether a pipe is held (for tests).
    #[cfg(test)]
    pub fn holds_pipe(&self) -> bool {
        self.pipe.is_some()
    }

    /// Moves bytes from `src` to `dst` until `src` reaches EOF, then shuts down `dst`'s
    /// write half. Adds what it reads to `read`.
    pub fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        src: &TcpStream,
        dst: &mut TcpStream,
        read: &AtomicU64,
    ) -> Poll<io::Result<u64>> {
        loop {
            if self.in_pipe > 0 {
                ready!(dst.poll_write_ready(cx))?;
                let pipe = self.pipe.as_ref().expect("bytes in a pipe");
                let r = dst.try_io(Interest::WRITABLE, || {
                    Ok(splice(
                        &pipe.read,
                        None,
                        &*dst,
                        None,
                        self.in_pipe,
                        flags(),
                    )?)
                });
                match r {
                    Ok(n) => {
                        self.in_pipe -= n;
                        self.written += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                continue;
            }
            if self.read_done {
                if let Some(p) = self.pipe.take() {
                    pool::give_pipe(p);
                }
                ready!(Pin::new(&mut *dst).poll_shutdown(cx))?;
                return Poll::Ready(Ok(self.written));
            }
            ready!(src.poll_read_ready(cx))?;
            if self.pipe.is_none() {
                self.pipe = Some(pool::take_pipe()?);
            }
            let pipe = self.pipe.as_ref().expect("just set");
            match src.try_io(Interest::READABLE, || {
                Ok(splice(
                    src,
                    None,
                    &pipe.write,
                    None,
                    pipe.capacity,
                    flags(),
                )?)
            }) {
                Ok(0) => self.read_done = true,
                Ok(n) => {
                    self.in_pipe = n;
                    read.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Drained: the pipe is empty; give it back while idle.
                    if let Some(p) = self.pipe.take() {
                        pool::give_pipe(p);
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl Drop for PipedDir {
    fn drop(&mut self) {
        // A pipe with bytes still in it must not go back to the pool.
        if self.in_pipe == 0
            && let Some(p) = self.pipe.take()
        {
            pool::give_pipe(p);
        }
    }
}
