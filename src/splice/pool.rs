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

use rustix::pipe::{PipeFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with};

/// Default size of one copy buffer (one per direction while data flows).
pub const BUFFER: usize = 64 * 1024;

/// The copy buffer size: [`BUFFER`], or `OAUTH_MAIL_PROXY_SPLICE_BUFFER` (bytes,
/// 4 KiB to 4 MiB; for benchmarking) when set.
pub fn buffer_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| knob("OAUTH_MAIL_PROXY_SPLICE_BUFFER", BUFFER, 4 << 20))
}

/// A size from the environment variable `var` (4 KiB to `max`), else `default`.
fn knob(var: &str, default: usize, max: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(default, |n| n.clamp(4096, max))
}

/// Pipe capacity asked for with `F_SETPIPE_SZ`. The kernel's default is 64 KiB;
/// 256 KiB moved a bulk download with 16 % less proxy CPU per GB and a ratio to
/// direct of 0.76 instead of 0.66, and 1 MiB gained nothing more (README, "Splice
/// and memory choices").
pub const PIPE: usize = 256 * 1024;

/// The pipe capacity: [`PIPE`], or `OAUTH_MAIL_PROXY_PIPE_SIZE` (bytes, 4 KiB to
/// 1 MiB; for benchmarking) when set.
pub fn pipe_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| knob("OAUTH_MAIL_PROXY_PIPE_SIZE", PIPE, 1 << 20))
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
    /// Its capacity in bytes.
    pub capacity: usize,
}

/// Takes an empty pipe from this thread's pool or creates one.
pub fn take_pipe() -> io::Result<Pipe> {
    if let Some(p) = PIPES.with(|p| p.borrow_mut().pop()) {
        return Ok(p);
    }
    let (read, write) = pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
    // The kernel may refuse the size (fs.pipe-max-size, an unprivileged user over
    // fs.pipe-user-pages-soft): the pipe then keeps what it has, which works too.
    let capacity = fcntl_setpipe_size(&write, pipe_size())
        .or_else(|_| fcntl_getpipe_size(&write))
        .unwrap_or(4096);
    Ok(Pipe {
        read,
        write,
        capacity,
    })
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
        let p = take_pipe().unwrap();
        assert_eq!(PIPES.with(|p| p.borrow().len()), SPARE - 1);
        assert_eq!(p.capacity, fcntl_getpipe_size(&p.write).unwrap());
        assert!(p.capacity >= 64 * 1024, "{}", p.capacity);
    }
}
