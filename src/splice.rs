//! After login: replay what each side already sent, then copy bytes both ways until
//! both directions are closed. EOF on one side shuts down the other's write half and
//! copying goes on the other way (half-close).
//!
//! Copying (`splice/buffered.rs`, `splice/piped.rs`): an idle session holds no buffer. Each direction
//! borrows a buffer from a per-thread pool (`splice/pool.rs`) when its source has data and
//! gives it back when the source would block. Between two plain TCP streams the bytes
//! go through `splice(2)` and a pipe instead (borrowed the same way, so idle sessions
//! hold no pipe file descriptors); `OAUTH_MAIL_PROXY_SPLICE=copy` turns that off.
//!
//! Idle timeout: each direction adds the bytes it reads to a counter. A timer ticking every `idle_timeout / 4`
//! compares the counters with the previous tick; when they have not moved for
//! `idle_timeout`, the splice ends and the caller drops (closes) both streams. A
//! session is therefore closed between `idle_timeout` and `1.25 × idle_timeout` after
//! its last byte, never earlier. The cost while data flows is one relaxed atomic add
//! per read.

mod buffered;
#[cfg(test)]
mod copy_tests;
mod piped;
mod pool;

use std::future::poll_fn;
use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::stream::Stream;

use buffered::BufferedDir;
use piped::PipedDir;

/// Buffer size of each direction of the splice while data flows.
pub const SPLICE_BUFFER: usize = pool::BUFFER;

/// Bytes moved by one splice.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transferred {
    /// Client → server, leftovers included.
    pub up: u64,
    /// Server → client, leftovers included.
    pub down: u64,
    /// The splice ended because no byte moved either way for `idle_timeout`.
    pub idle_timeout: bool,
}

/// Splices `down` (the client) and `up` (the server). `down_leftover` are bytes the
/// client sent after its login command, `up_leftover` bytes the server sent after its
/// login reply; each is written to the other side first. Returns when both directions
/// are done, either side fails, `shutdown` is cancelled, or nothing moved in either
/// direction for `idle_timeout`.
pub async fn splice(
    down: &mut Stream,
    up: &mut Stream,
    down_leftover: &[u8],
    up_leftover: &[u8],
    shutdown: &CancellationToken,
    idle_timeout: Duration,
) -> std::io::Result<Transferred> {
    if !down_leftover.is_empty() {
        up.write_all(down_leftover).await?;
        up.flush().await?;
    }
    if !up_leftover.is_empty() {
        down.write_all(up_leftover).await?;
        down.flush().await?;
    }
    // Bytes read from the client (going up) and from the server (going down).
    let (read_down, read_up) = (AtomicU64::new(0), AtomicU64::new(0));
    let copy = copy_both(down, up, &read_down, &read_up, use_pipes());
    let moved = || read_down.load(Ordering::Relaxed) + read_up.load(Ordering::Relaxed);
    let idle = idle_watch(idle_timeout, moved);
    let mut t = Transferred {
        up: down_leftover.len() as u64,
        down: up_leftover.len() as u64,
        idle_timeout: false,
    };
    tokio::select! {
        r = copy => {
            let (a, b) = r?;
            t.up += a;
            t.down += b;
            return Ok(t);
        }
        _ = shutdown.cancelled() => {}
        _ = idle => t.idle_timeout = true,
    }
    // Cancelled or idle: count what was read (at most one buffer per direction of it
    // may not have been written yet).
    t.up += read_down.load(Ordering::Relaxed);
    t.down += read_up.load(Ordering::Relaxed);
    Ok(t)
}

/// Resolves once `moved()` has not changed for `idle` (checked every `idle / 4`).
async fn idle_watch(idle: Duration, moved: impl Fn() -> u64) {
    let period = (idle / 4).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let (mut seen, mut since) = (moved(), Instant::now());
    loop {
        let now = tick.tick().await;
        let m = moved();
        if m != seen {
            (seen, since) = (m, now);
        } else if now.duration_since(since) >= idle {
            return;
        }
    }
}

/// Whether plain↔plain splices use `splice(2)` (not when
/// `OAUTH_MAIL_PROXY_SPLICE=copy`).
fn use_pipes() -> bool {
    static PIPES: OnceLock<bool> = OnceLock::new();
    *PIPES.get_or_init(|| std::env::var("OAUTH_MAIL_PROXY_SPLICE").map_or(true, |v| v != "copy"))
}

/// Records a finished direction; errors end the whole splice.
fn finish(slot: &mut Option<u64>, p: Poll<io::Result<u64>>) -> io::Result<()> {
    if let Poll::Ready(r) = p {
        *slot = Some(r?);
    }
    Ok(())
}

/// Copies both ways until both directions reached EOF; returns (up, down) bytes.
async fn copy_both(
    down: &mut Stream,
    up: &mut Stream,
    read_down: &AtomicU64,
    read_up: &AtomicU64,
    pipes: bool,
) -> io::Result<(u64, u64)> {
    let (mut a, mut b) = (None, None);
    if let (Stream::Plain(d), Stream::Plain(u)) = (&mut *down, &mut *up)
        && pipes
    {
        let (mut to_up, mut to_down) = (PipedDir::default(), PipedDir::default());
        return poll_fn(|cx| {
            if a.is_none() {
                finish(&mut a, to_up.poll_copy(cx, d, u, read_down))?;
            }
            if b.is_none() {
                finish(&mut b, to_down.poll_copy(cx, u, d, read_up))?;
            }
            match (a, b) {
                (Some(x), Some(y)) => Poll::Ready(Ok((x, y))),
                _ => Poll::Pending,
            }
        })
        .await;
    }
    let (mut to_up, mut to_down) = (BufferedDir::new(), BufferedDir::new());
    poll_fn(|cx| {
        if a.is_none() {
            finish(&mut a, to_up.poll_copy(cx, down, up, read_down))?;
        }
        if b.is_none() {
            finish(&mut b, to_down.poll_copy(cx, up, down, read_up))?;
        }
        match (a, b) {
            (Some(x), Some(y)) => Poll::Ready(Ok((x, y))),
            _ => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_watch_fires_after_a_quiet_period_never_before() {
        let idle = Duration::from_millis(200);
        let start = Instant::now();
        idle_watch(idle, || 0).await;
        let waited = start.elapsed();
        assert!(waited >= idle, "fired early: {waited:?}");
        assert!(waited < idle + Duration::from_secs(5), "waited {waited:?}");

        // Activity for 600 ms: the watch resolves no earlier than 600 ms + idle.
        let start = Instant::now();
        let moved = || start.elapsed().as_millis().min(600) as u64;
        idle_watch(idle, moved).await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(800),
            "fired early: {waited:?}"
        );
    }
}
