//! The copy engines on real loopback sockets: integrity both ways, half-close, byte
//! counts, and no buffer or pipe held once a direction is idle.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::buffered::BufferedDir;
use super::piped::PipedDir;
use super::{copy_both, pool};
use crate::stream::Stream;

/// A connected pair of loopback sockets.
async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (b, _) = l.accept().await.unwrap();
    (a, b)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// client ⇄ [down | proxy | up] ⇄ server; sends `up_len` bytes client → server and
/// `down_len` back, the client half-closing first; checks bytes and counts.
async fn round_trip(pipes: bool, up_len: usize, down_len: usize) {
    let (mut client, down) = pair().await;
    let (up, mut server) = pair().await;
    let proxy = tokio::spawn(async move {
        let (mut down, mut up) = (Stream::Plain(down), Stream::Plain(up));
        let (rd, ru) = (AtomicU64::new(0), AtomicU64::new(0));
        let r = copy_both(&mut down, &mut up, &rd, &ru, pipes).await;
        (r.unwrap(), rd.into_inner(), ru.into_inner())
    });
    let to_server = pattern(up_len, 1);
    let to_client = pattern(down_len, 7);
    let sent = to_server.clone();
    let writer = tokio::spawn(async move {
        client.write_all(&sent).await.unwrap();
        client.shutdown().await.unwrap(); // half-close: the other way keeps going
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut got = Vec::new();
    server.read_to_end(&mut got).await.unwrap(); // EOF propagated upstream
    assert!(got == to_server, "client → server bytes differ");
    server.write_all(&to_client).await.unwrap();
    server.shutdown().await.unwrap();
    let back = writer.await.unwrap();
    assert!(back == to_client, "server → client bytes differ");
    let ((a, b), rd, ru) = proxy.await.unwrap();
    assert_eq!((a, b), (up_len as u64, down_len as u64));
    assert_eq!((rd, ru), (up_len as u64, down_len as u64));
}

#[tokio::test]
async fn piped_copies_both_ways_with_half_close() {
    round_trip(true, 5 << 20, 3 << 20).await;
    round_trip(true, 0, 1000).await;
}

#[tokio::test]
async fn buffered_copies_both_ways_with_half_close() {
    round_trip(false, 5 << 20, 3 << 20).await;
    round_trip(false, 1000, 0).await;
}

#[tokio::test]
async fn idle_directions_hold_no_buffer_and_no_pipe() {
    let (mut client, down) = pair().await;
    let (up, mut server) = pair().await;
    let (mut down_s, mut up_s) = (Stream::Plain(down), Stream::Plain(up));
    let read = AtomicU64::new(0);
    let mut dir = BufferedDir::new();
    client.write_all(b"hello").await.unwrap();
    let mut got = [0u8; 5];
    // Poll until the bytes arrived and the source would block again.
    let copy = async {
        loop {
            let p =
                poll_fn(|cx| Poll::Ready(dir.poll_copy(cx, &mut down_s, &mut up_s, &read))).await;
            assert!(p.is_pending(), "direction ended early");
            if read.load(Ordering::Relaxed) == 5 {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    copy.await;
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello");
    assert!(
        !dir.holds_buffer(),
        "an idle buffered direction holds a buffer"
    );

    let (Stream::Plain(d), Stream::Plain(u)) = (&mut down_s, &mut up_s) else {
        unreachable!()
    };
    let mut pdir = PipedDir::default();
    client.write_all(b"world").await.unwrap();
    loop {
        let p = poll_fn(|cx| Poll::Ready(pdir.poll_copy(cx, d, u, &read))).await;
        assert!(p.is_pending(), "direction ended early");
        if read.load(Ordering::Relaxed) == 10 {
            break;
        }
        tokio::task::yield_now().await;
    }
    // One more poll drains to "would block" and gives the pipe back.
    let p = poll_fn(|cx| Poll::Ready(pdir.poll_copy(cx, d, u, &read))).await;
    assert!(p.is_pending());
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"world");
    assert!(!pdir.holds_pipe(), "an idle piped direction holds a pipe");
    let _ = pool::buffer_size();
}
