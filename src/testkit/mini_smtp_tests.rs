use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::*;

/// Feeds `data` to `find_data_end` in pieces of `step` bytes, as `swallow` does;
/// returns (bytes counted, index just after the terminator).
fn scan(data: &[u8], step: usize) -> Option<(u64, usize)> {
    let (mut start, mut end, mut bol, mut counted) = (0, 0, true, 0u64);
    loop {
        match find_data_end(&data[start..end], bol) {
            Ok(e) => return Some((counted + e as u64 - 3, start + e)),
            Err((consumed, b)) => {
                counted += consumed as u64;
                start += consumed;
                bol = b;
                if end == data.len() {
                    return None;
                }
                end = (end + step).min(data.len());
            }
        }
    }
}

#[test]
fn finds_the_terminator_across_every_split() {
    let msg = b"Subject: x\r\n\r\n.. stuffed\r\nline.with.dots\r\n.\r\nQUIT\r\n";
    let body_len = msg.len() - ".\r\nQUIT\r\n".len();
    for step in 1..msg.len() {
        assert_eq!(
            scan(msg, step),
            Some((body_len as u64, msg.len() - 6)),
            "step {step}"
        );
    }
    // An empty message, and no terminator at all.
    assert_eq!(scan(b".\r\n", 1), Some((0, 3)));
    assert_eq!(scan(b"a\r\n.x\r\n.\r", 2), None);
    // A long run without dots takes the eight-byte path.
    let long = [vec![b'a'; 1000], b"\r\n.\r\n".to_vec()].concat();
    assert_eq!(scan(&long, 300), Some((1002, 1005)));
}

#[test]
fn parses_both_mechanisms() {
    assert_eq!(
        parse_sasl("XOAUTH2", b"user=u@x\x01auth=Bearer tok\x01\x01"),
        Some(("u@x".into(), "tok".into()))
    );
    assert_eq!(
        parse_sasl(
            "OAUTHBEARER",
            b"n,a=u=2Cv@x,\x01host=h\x01auth=Bearer t2\x01\x01"
        ),
        Some(("u,v@x".into(), "t2".into()))
    );
    assert_eq!(
        parse_sasl("XOAUTH2", b"user=u\x01auth=Basic x\x01\x01"),
        None
    );
}

/// Reads one (possibly multi-line) reply and checks its code.
async fn expect(r: &mut BufReader<TcpStream>, prefix: &str) {
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await.expect("read");
        assert!(line.starts_with(prefix), "expected {prefix}, got {line:?}");
        if line.as_bytes().get(3) != Some(&b'-') {
            return;
        }
    }
}

#[tokio::test]
async fn accepts_oauth_and_counts_data() {
    let token: Arc<str> = Arc::from(format!("tok-{}", std::process::id()));
    let t = token.clone();
    let cfg = MiniSmtpConfig {
        validate: Arc::new(move |u, k| u == "u@x" && k == &*t),
        tls: None,
    };
    let server = MiniSmtp::start(([127, 0, 0, 1], 0).into(), cfg)
        .await
        .expect("start");
    let mut r = BufReader::new(TcpStream::connect(server.addr()).await.expect("connect"));
    expect(&mut r, "220").await;
    r.get_mut().write_all(b"EHLO c\r\n").await.unwrap();
    expect(&mut r, "250").await;
    r.get_mut().write_all(b"MAIL FROM:<u@x>\r\n").await.unwrap();
    expect(&mut r, "530").await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = b64.encode("user=u@x\x01auth=Bearer wrong\x01\x01");
    r.get_mut()
        .write_all(format!("AUTH XOAUTH2 {bad}\r\n").as_bytes())
        .await
        .unwrap();
    expect(&mut r, "334").await;
    r.get_mut().write_all(b"\r\n").await.unwrap();
    expect(&mut r, "535").await;
    let good = b64.encode(format!("user=u@x\x01auth=Bearer {token}\x01\x01"));
    r.get_mut()
        .write_all(format!("AUTH XOAUTH2 {good}\r\n").as_bytes())
        .await
        .unwrap();
    expect(&mut r, "235").await;
    // Pipelined envelope, DATA, and a message with a stuffed dot line.
    let body = "Subject: t\r\n\r\n..x\r\nend\r\n";
    r.get_mut()
        .write_all(b"MAIL FROM:<u@x>\r\nRCPT TO:<v@y>\r\nDATA\r\n")
        .await
        .unwrap();
    expect(&mut r, "250").await;
    expect(&mut r, "250").await;
    expect(&mut r, "354").await;
    r.get_mut()
        .write_all(format!("{body}.\r\nQUIT\r\n").as_bytes())
        .await
        .unwrap();
    expect(&mut r, "250").await;
    expect(&mut r, "221").await;
    assert_eq!(server.messages(), 1);
    assert_eq!(server.data_bytes(), body.len() as u64);
    assert_eq!((server.logins(), server.failed_logins()), (1, 1));
}
