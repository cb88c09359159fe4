//! One direction of the splice through a user-space buffer that is borrowed from the
//! pool only while data flows (any pair of streams, TLS included).
//!
//! States: *armed* (the source may have data: read into a borrowed buffer) and *idle*
//! (the last read would block: the buffer went back to the pool and the direction
//! waits with a read into a small buffer on the stack, whose bytes move into a
//! borrowed buffer when some arrive). Waiting through a read rather than socket
//! readiness keeps TLS streams correct: rustls may hold bytes no readiness announces.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::pool;
use crate::stream::Stream;

/// Size of the on-stack buffer an idle direction waits with.
const PROBE: usize = 2048;

#[derive(Default)]
pub struct BufferedDir {
    buf: Option<Box<[u8]>>,
    pos: usize,
    cap: usize,
    armed: bool,
    read_done: bool,
    need_flush: bool,
    /// Bytes written to the destination.
    pub written: u64,
}

impl BufferedDir {
    pub fn new() -> Self {
        BufferedDir {
            armed: true,
            ..Default::default()
        }
    }

    /// Whether a buffer is held (for tests).
    #[cfg(test)]
    pub fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }

    /// Copies from `src` to `dst` until `src` reaches EOF (then shuts down `dst`'s write
    /// half). Adds what it reads to `read`.
    pub fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut Stream,
        dst: &mut Stream,
        read: &AtomicU64,
    ) -> Poll<io::Result<u64>> {
        loop {
            if self.pos == self.cap && !self.read_done {
                if !self.armed {
                    if self.need_flush {
                        // Data written but possibly still buffered (TLS): push it out
                        // while waiting; a pending flush just registers the waker.
                        if let Poll::Ready(r) = Pin::new(&mut *dst).poll_flush(cx) {
                            r?;
                            self.need_flush = false;
                        }
                    }
                    // Idle: wait for data with a small buffer on the stack; borrow a
                    // real one only when some arrived.
                    let mut probe = [0u8; PROBE];
                    let mut rb = ReadBuf::new(&mut probe);
                    ready!(Pin::new(&mut *src).poll_read(cx, &mut rb))?;
                    let n = rb.filled().len();
                    self.armed = true;
                    self.pos = 0;
                    self.cap = n;
                    if n == 0 {
                        self.read_done = true;
                    } else {
                        read.fetch_add(n as u64, Ordering::Relaxed);
                        let buf = self.buf.get_or_insert_with(pool::take_buffer);
                        buf[..n].copy_from_slice(&probe[..n]);
                    }
                } else {
                    let buf = self.buf.get_or_insert_with(pool::take_buffer);
                    let mut rb = ReadBuf::new(buf);
                    match Pin::new(&mut *src).poll_read(cx, &mut rb) {
                        Poll::Pending => {
                            self.armed = false;
                            if let Some(b) = self.buf.take() {
                                pool::give_buffer(b);
                            }
                            if self.need_flush {
                                ready!(Pin::new(&mut *dst).poll_flush(cx))?;
                                self.need_flush = false;
                            }
                            return Poll::Pending;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(())) => {
                            let n = rb.filled().len();
                            self.pos = 0;
                            self.cap = n;
                            if n == 0 {
                                self.read_done = true;
                            } else {
                                read.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        }
                    }
                }
            }
            while self.pos < self.cap {
                let buf = self.buf.as_deref().expect("a buffer holds unwritten bytes");
                let n = ready!(Pin::new(&mut *dst).poll_write(cx, &buf[self.pos..self.cap]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "write zero bytes into the splice destination",
                    )));
                }
                self.pos += n;
                self.written += n as u64;
                self.need_flush = true;
            }
            if self.read_done {
                if let Some(b) = self.buf.take() {
                    pool::give_buffer(b);
                }
                ready!(Pin::new(&mut *dst).poll_flush(cx))?;
                self.need_flush = false;
                ready!(Pin::new(&mut *dst).poll_shutdown(cx))?;
                return Poll::Ready(Ok(self.written));
            }
        }
    }
}
