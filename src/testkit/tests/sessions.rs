//! OAUTHBEARER continuations and cancel, APPEND, IDLE, literals and limits, shutdown.

use super::*;

#[tokio::test]
async fn oauthbearer_continuations_and_cancel() {
    let server = start().await;
    let mut c = Client::connect(server.addr()).await;
    c.line().await;

    // No SASL-IR: empty challenge, then the response. Authzid is GS2-escaped.
    c.send("a AUTHENTICATE OAUTHBEARER").await;
    assert_eq!(c.line().await, "+ ");
    c.send(&oauthbearer("a=2Cb=3Dc", "bad")).await;
    assert!(c.line().await.starts_with("+ "));
    c.send("AQ==").await;
    assert_eq!(c.line().await, "a NO [AUTHENTICATIONFAILED] Invalid token");

    // Cancelling is a BAD (RFC 3501 §6.2.2).
    c.send("b AUTHENTICATE XOAUTH2").await;
    assert_eq!(c.line().await, "+ ");
    c.send("*").await;
    assert_eq!(c.line().await, "b BAD AUTHENTICATE cancelled");
    assert_eq!(
        c.cmd("c AUTHENTICATE PLAIN").await,
        ["c NO [CANNOT] Unsupported authentication mechanism"]
    );
    assert_eq!(
        c.cmd("d AUTHENTICATE XOAUTH2 !!!").await,
        ["d BAD Invalid base64"]
    );
    assert_eq!(
        c.cmd(&format!(
            "e AUTHENTICATE XOAUTH2 {}",
            STANDARD.encode("garbage")
        ))
        .await,
        ["e NO [AUTHENTICATIONFAILED] Malformed SASL message"]
    );
    assert_eq!((server.logins(), server.failed_logins()), (0, 2));

    c.send("f AUTHENTICATE OAUTHBEARER").await;
    assert_eq!(c.line().await, "+ ");
    c.send(&oauthbearer("a=2Cb=3Dc", TOKEN)).await;
    assert!(
        c.line()
            .await
            .starts_with("f OK [CAPABILITY IMAP4rev1 IDLE ")
    );
    assert_eq!(
        c.cmd(&format!("g AUTHENTICATE XOAUTH2 {}", xoauth2(USER, TOKEN)))
            .await,
        ["g BAD AUTHENTICATE: invalid arguments or not valid in this state"]
    );
    assert_eq!((server.logins(), server.failed_logins()), (1, 2));

    // OAUTHBEARER with SASL-IR on a second connection.
    let mut c2 = Client::connect(server.addr()).await;
    c2.line().await;
    assert_eq!(
        c2.cmd(&format!(
            "a AUTHENTICATE OAUTHBEARER {}",
            oauthbearer(USER, TOKEN)
        ))
        .await
        .len(),
        1
    );
    assert_eq!(server.logins(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn append_idle_literals_limits() {
    let server = start().await;
    let mut c = Client::connect(server.addr()).await;
    c.line().await;

    // Before login: refused without a go-ahead, so the client sends no literal.
    assert_eq!(
        c.cmd("a APPEND INBOX {10}").await,
        ["a BAD APPEND: not valid in this state"]
    );
    // LOGIN with literals (generic literal handling): still refused.
    c.send("b LOGIN {5}").await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.raw(b"alice {6+}\r\nsecret\r\n").await;
    assert!(c.line().await.starts_with("b NO [PRIVACYREQUIRED]"));
    c.cmd(&format!("c AUTHENTICATE XOAUTH2 {}", xoauth2(USER, TOKEN)))
        .await;

    // Synchronizing literal.
    let msg = b"Subject: up\r\n\r\nhello\r\n";
    c.send(&format!("d APPEND INBOX (\\Seen) {{{}}}", msg.len()))
        .await;
    assert_eq!(c.line().await, "+ Ready for literal data");
    c.raw(msg).await;
    c.send("").await;
    assert_eq!(c.line().await, "d OK APPEND completed");
    // LITERAL+, 1 MiB, with a date.
    let big = vec![b'x'; 1 << 20];
    c.send(&format!(
        "e APPEND inbox \"01-Jan-2024 00:00:00 +0000\" {{{}+}}",
        big.len()
    ))
    .await;
    c.raw(&big).await;
    c.send("").await;
    assert_eq!(c.line().await, "e OK APPEND completed");
    // Non-INBOX: refused before the literal is sent.
    assert_eq!(
        c.cmd("f APPEND Sent {3}").await,
        ["f NO [TRYCREATE] No such mailbox"]
    );
    // Non-INBOX with LITERAL+: the bytes are consumed, not counted.
    c.raw(b"g APPEND Sent {3+}\r\nabc\r\n").await;
    assert_eq!(c.line().await, "g NO [TRYCREATE] No such mailbox");
    assert_eq!(server.appended_bytes(), (msg.len() + big.len()) as u64);
    // The mailbox does not change.
    c.cmd("h SELECT INBOX").await;
    assert_eq!(c.cmd("i SEARCH ALL").await[0], "* SEARCH 1 2 3");

    // IDLE until DONE.
    c.send("j IDLE").await;
    assert_eq!(c.line().await, "+ idling");
    c.send("DONE").await;
    assert_eq!(c.line().await, "j OK IDLE terminated");

    // A line over 64 KiB ends the session.
    let long = format!("k NOOP {}\r\n", "x".repeat(MAX_LINE + 10));
    c.raw(long.as_bytes()).await;
    assert_eq!(c.line().await, "* BYE Line too long");
    c.eof().await;
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_sessions() {
    let server = start().await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        let mut c = Client::connect(server.addr()).await;
        c.line().await;
        clients.push(c);
    }
    // One in IDLE.
    clients[0]
        .cmd(&format!("a AUTHENTICATE XOAUTH2 {}", xoauth2(USER, TOKEN)))
        .await;
    clients[0].send("b IDLE").await;
    assert_eq!(clients[0].line().await, "+ idling");
    assert_eq!(server.active_sessions(), 50);
    tokio::time::timeout(STEP, server.shutdown())
        .await
        .expect("shutdown hangs");
    for c in &mut clients {
        c.eof().await;
    }
}
