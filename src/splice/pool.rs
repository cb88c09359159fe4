//! Per-thread pools of splice buffers and pipes, so an idle session holds neither.
//!
//! A direction borrows a buffer (or, for `splice(2)`, a pipe) when its source becomes
//! readable and gives it back as soon as the source would block with nothing left to
//! write. The pools keep a few spare ones per worker thread so bursts do not pay an
//! allocation (or `pipe2` + `close` × 2) each; beyond that they are freed.

use std::cell::RefCell;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use rustix::pipe::{PipeFlags, pipe_with};

/// Default size of one copy buffer (one per direction while data flows).
pub const BUFFER: usize = 64 * 1024;

/// The copy buffer size: [`BUFFER`], or `OAUTH_MAIL_PROXY_SPLICE_BUFFER` (bytes,
/// 4 KiB to 4 MiB; for benchmarking) when set.
pub fn buffer_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("OAUTH_MAIL_PROXY_SPLICE_BUFFER")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(BUFFER, |n| n.clamp(4096, 4 << 20))
    })
}

/// Spare buffers / pipes kept per thread.
const SPARE: usize = 8;

thread_local! {
    static BUFFERS: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

/// Takes a buffer of [`buffer_size`] bytes from this thread's pool or allocates one.
pub fn take_buffer() -> Box<[u8]> {
    BUFFERS
        .with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; buffer_size()].into_boxed_slice())
}

/// Returns a buffer to this thread's pool (freed when the pool is full).
pub fn give_buffer(buf: Box<[u8]>) {
    BUFFERS.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < SPARE {
            p.push(buf);
        }
    });
}

/// A non-blocking pipe; `read` and `write` are its two ends.
pub struct Pipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

/// Takes an empty pipe from this thread's pool or creates one.
pub fn take_pipe() -> io::Result<Pipe> {
    if let Some(p) = PIPES.with(|p| p.borrow_mut().pop()) {
        return Ok(p);
    }
    let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
    Ok(Pipe { read, write })
}

/// Returns an EMPTY pipe to this thread's pool (closed when the pool is full). A pipe
/// that still holds bytes must be dropped instead.
pub fn give_pipe(pipe: Pipe) {
    PIPES.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < SPARE {
            p.push(pipe);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_and_pipes_are_reused_up_to_the_spare_count() {
        let bufs: Vec<_> = (0..SPARE + 3).map(|_| take_buffer()).collect();
        assert!(bufs.iter().all(|b| b.len() == buffer_size()));
        bufs.into_iter().for_each(give_buffer);
        assert_eq!(BUFFERS.with(|p| p.borrow().len()), SPARE);
        let pipes: Vec<_> = (0..SPARE + 3).map(|_| take_pipe().unwrap()).collect();
        pipes.into_iter().for_each(give_pipe);
        assert_eq!(PIPES.with(|p| p.borrow().len()), SPARE);
        let _ = take_pipe().unwrap();
        assert_eq!(PIPES.with(|p| p.borrow().len()), SPARE - 1);
    }
}
