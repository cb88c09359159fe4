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

/// TLS on both sides (the buffered engine): a 6 MB upload the server reads whole
/// before it answers, the way an IMAP APPEND flows, then the answer; no half-close.
#[tokio::test]
async fn tls_upload_then_reply_goes_through() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::ensure_generated(dir.path()).unwrap();
    let server_cfg = crate::tls::server_config(&cert, &key).unwrap();
    let client_cfg = crate::tls::client_config(Some(&cert)).unwrap();
    let name = || rustls_pki_types::ServerName::try_from("localhost").unwrap();

    let (client_tcp, down_tcp) = pair().await;
    let (up_tcp, server_tcp) = pair().await;
    let mut client = Stream::Plain(client_tcp);
    let mut down = Stream::Plain(down_tcp);
    let mut up = Stream::Plain(up_tcp);
    let mut server = Stream::Plain(server_tcp);
    let (a, b) = tokio::join!(
        client.connect_tls(client_cfg.clone(), name()),
        down.accept_tls(server_cfg.clone())
    );
    a.unwrap();
    b.unwrap();
    let (a, b) = tokio::join!(
        up.connect_tls(client_cfg, name()),
        server.accept_tls(server_cfg)
    );
    a.unwrap();
    b.unwrap();

    let proxy = tokio::spawn(async move {
        let (rd, ru) = (AtomicU64::new(0), AtomicU64::new(0));
        let r = copy_both(&mut down, &mut up, &rd, &ru, true).await;
        r.unwrap()
    });
    let upload = pattern(6 << 20, 3);
    let sent = upload.clone();
    let c = tokio::spawn(async move {
        client.write_all(&sent).await.unwrap();
        client.flush().await.unwrap();
        let mut reply = [0u8; 7];
        client.read_exact(&mut reply).await.unwrap();
        client.shutdown().await.unwrap();
        reply
    });
    let mut got = vec![0u8; upload.len()];
    server.read_exact(&mut got).await.unwrap();
    assert!(got == upload, "uploaded bytes differ");
    server.write_all(b"A1 OK\r\n").await.unwrap();
    server.flush().await.unwrap();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(20), c)
        .await
        .expect("the reply never reached the client")
        .unwrap();
    assert_eq!(&reply, b"A1 OK\r\n");
    // The client closed: EOF reaches the server, which closes too.
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    server.shutdown().await.unwrap();
    let (up_bytes, down_bytes) = proxy.await.unwrap();
    assert_eq!((up_bytes, down_bytes), (upload.len() as u64, 7));
}
