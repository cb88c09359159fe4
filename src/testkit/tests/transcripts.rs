//! Login, SELECT and FETCH transcripts; the FETCH, SEARCH and STATUS variants.

use super::*;

#[tokio::test]
async fn transcript_login_select_fetch() {
    let server = start().await;
    let msgs = messages();
    let mut c = Client::connect(server.addr()).await;
    assert_eq!(format!("{}\r\n", c.line().await), GREETING);
    assert_eq!(
        c.cmd("a1 CAPABILITY").await,
        [
            "* CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER ID",
            "a1 OK CAPABILITY completed"
        ]
    );
    assert_eq!(
        c.cmd("a2 SELECT INBOX").await,
        ["a2 BAD SELECT: invalid arguments or not valid in this state"]
    );

    // LOGIN is refused: OAuth only.
    let r = c.cmd("a3 LOGIN alice secret").await;
    assert_eq!(r.len(), 1);
    assert!(r[0].starts_with("a3 NO [PRIVACYREQUIRED] "), "{r:?}");

    // A bad token: error challenge, then NO after the client's empty response.
    c.send(&format!(
        "a4 AUTHENTICATE XOAUTH2 {}",
        xoauth2(USER, "bad-token")
    ))
    .await;
    let challenge = c.line().await;
    let json = STANDARD
        .decode(challenge.strip_prefix("+ ").unwrap())
        .unwrap();
    assert_eq!(json, ERROR_CHALLENGE_JSON.as_bytes());
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["status"], "401");
    c.send("").await;
    assert_eq!(c.line().await, "a4 NO [AUTHENTICATIONFAILED] Invalid token");
    assert_eq!((server.logins(), server.failed_logins()), (0, 2));

    // XOAUTH2 with SASL-IR.
    assert_eq!(
        c.cmd(&format!("a5 AUTHENTICATE XOAUTH2 {}", xoauth2(USER, TOKEN)))
            .await,
        ["a5 OK [CAPABILITY IMAP4rev1 IDLE ID UNSELECT LITERAL+] Logged in"]
    );
    assert_eq!((server.logins(), server.failed_logins()), (1, 2));
    assert_eq!(
        c.cmd("a6 CAPABILITY").await,
        [
            "* CAPABILITY IMAP4rev1 IDLE ID UNSELECT LITERAL+",
            "a6 OK CAPABILITY completed"
        ]
    );

    assert_eq!(
        c.cmd("a7 select inbox").await,
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
            "* OK [PERMANENTFLAGS ()] No permanent flags",
            "* 3 EXISTS",
            "* 0 RECENT",
            "* OK [UIDVALIDITY 1] UIDs valid",
            "* OK [UIDNEXT 4] Predicted next UID",
            "a7 OK [READ-WRITE] SELECT completed",
        ]
    );

    // BODY[] returns the exact bytes and sets \Seen (reported since FLAGS was not asked).
    c.send("a8 FETCH 1:* BODY[]").await;
    let (got, done) = c.fetch_literals("a8").await;
    assert_eq!(done, "a8 OK FETCH completed");
    assert_eq!(got.len(), 3);
    for (i, (before, data, after)) in got.iter().enumerate() {
        assert_eq!(before, &format!("* {} FETCH (BODY[] ", i + 1));
        assert_eq!(&data[..], &msgs[i][..]);
        assert_eq!(after, " FLAGS (\\Seen))");
    }
    assert_eq!(
        c.cmd("a9 FETCH 1:* (FLAGS)").await,
        [
            "* 1 FETCH (FLAGS (\\Seen))",
            "* 2 FETCH (FLAGS (\\Seen))",
            "* 3 FETCH (FLAGS (\\Seen))",
            "a9 OK FETCH completed",
        ]
    );
    assert_eq!(
        c.cmd("a10 LOGOUT").await,
        ["* BYE mini-imap logging out", "a10 OK LOGOUT completed"]
    );
    c.eof().await;
    server.shutdown().await;
}

#[tokio::test]
async fn fetch_variants_search_status() {
    let server = start().await;
    let msgs = messages();
    let sizes: Vec<usize> = msgs.iter().map(|m| m.len()).collect();
    let mut c = Client::connect(server.addr()).await;
    c.line().await;
    c.cmd(&format!("a AUTHENTICATE XOAUTH2 {}", xoauth2(USER, TOKEN)))
        .await;
    assert_eq!(
        c.cmd("b FETCH 1 FLAGS").await,
        ["b BAD FETCH: invalid arguments or not valid in this state"]
    );
    let r = c.cmd("c EXAMINE INBOX").await;
    assert_eq!(r.last().unwrap(), "c OK [READ-ONLY] EXAMINE completed");

    // Read-only: BODY[] does not set \Seen.
    c.send("d FETCH 2 (FLAGS BODY[])").await;
    let (got, _) = c.fetch_literals("d").await;
    assert_eq!(got[0].0, "* 2 FETCH (FLAGS () BODY[] ");
    assert_eq!(got[0].1, msgs[1]);
    assert_eq!(got[0].2, ")");

    c.cmd("e SELECT INBOX").await;
    assert_eq!(
        c.cmd("f UID FETCH 2:3 (FLAGS)").await,
        [
            "* 2 FETCH (UID 2 FLAGS ())",
            "* 3 FETCH (UID 3 FLAGS ())",
            "f OK UID FETCH completed"
        ]
    );
    assert_eq!(
        c.cmd("g FETCH 3,1 (UID RFC822.SIZE)").await,
        [
            format!("* 1 FETCH (UID 1 RFC822.SIZE {})", sizes[0]),
            format!("* 3 FETCH (UID 3 RFC822.SIZE {})", sizes[2]),
            "g OK FETCH completed".to_string()
        ]
    );
    // UID n:* past the end still names the last message.
    assert_eq!(
        c.cmd("h UID FETCH 9:* UID").await,
        ["* 3 FETCH (UID 3)", "h OK UID FETCH completed"]
    );
    assert_eq!(
        c.cmd("i UID FETCH 7 UID").await,
        ["i OK UID FETCH completed"]
    );
    assert_eq!(
        c.cmd("j FETCH 4 FLAGS").await,
        ["j BAD Invalid message sequence number"]
    );
    assert_eq!(
        c.cmd("k FETCH 1 ENVELOPE").await,
        ["k BAD Unsupported FETCH data item"]
    );
    assert_eq!(
        c.cmd("k2 FETCH 1 FAST").await,
        [
            format!(
                "* 1 FETCH (FLAGS () INTERNALDATE \"01-Jan-2024 00:00:00 +0000\" RFC822.SIZE {})",
                sizes[0]
            ),
            "k2 OK FETCH completed".to_string()
        ]
    );

    // PEEK answers as BODY[], doesn't set \Seen; items come in the requested order.
    c.send("l UID FETCH 1 (BODY.PEEK[] FLAGS UID RFC822.SIZE)")
        .await;
    let (got, done) = c.fetch_literals("l").await;
    assert_eq!(done, "l OK UID FETCH completed");
    assert_eq!(got[0].0, "* 1 FETCH (BODY[] ");
    assert_eq!(got[0].1, msgs[0]);
    assert_eq!(
        got[0].2,
        format!(" FLAGS () UID 1 RFC822.SIZE {})", sizes[0])
    );

    // Sections and partials.
    c.send("m FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[]<6.3> RFC822.HEADER)")
        .await;
    let head_len = msgs[0].windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut expect = vec![
        ("BODY[HEADER]", &msgs[0][..head_len]),
        ("BODY[TEXT]", &msgs[0][head_len..]),
        ("BODY[]<6>", &msgs[0][6..9]),
        ("RFC822.HEADER", &msgs[0][..head_len]),
    ]
    .into_iter();
    let mut first = c.line().await;
    assert!(first.starts_with("* 1 FETCH ("), "{first}");
    first.drain(..11);
    let mut text = first;
    loop {
        let (name, data) = expect.next().unwrap();
        let open = text.rfind('{').unwrap();
        assert_eq!(text[..open].trim(), name);
        let n: usize = text[open + 1..text.len() - 1].parse().unwrap();
        assert_eq!(c.bytes(n).await, data, "{name}");
        text = c.line().await;
        if text == ")" {
            break;
        }
    }
    assert!(expect.next().is_none());
    assert_eq!(c.line().await, "m OK FETCH completed");

    // RFC822 (not PEEK) sets \Seen and reports it.
    c.send("n FETCH 3 (RFC822)").await;
    let (got, _) = c.fetch_literals("n").await;
    assert_eq!(got[0].0, "* 3 FETCH (RFC822 ");
    assert_eq!(got[0].1, msgs[2]);
    assert_eq!(got[0].2, " FLAGS (\\Seen))");

    assert_eq!(
        c.cmd("o SEARCH ALL").await,
        ["* SEARCH 1 2 3", "o OK SEARCH completed"]
    );
    assert_eq!(
        c.cmd("p UID SEARCH CHARSET UTF-8 UID 2:*").await,
        ["* SEARCH 2 3", "p OK UID SEARCH completed"]
    );
    assert_eq!(
        c.cmd("q STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
            .await,
        [
            "* STATUS INBOX (MESSAGES 3 RECENT 0 UIDNEXT 4 UIDVALIDITY 1 UNSEEN 2)",
            "q OK STATUS completed"
        ]
    );
    assert_eq!(
        c.cmd("r STATUS Sent (MESSAGES)").await,
        ["r NO [NONEXISTENT] No such mailbox"]
    );
    assert_eq!(
        c.cmd("s LIST \"\" *").await,
        [
            "* LIST (\\HasNoChildren) \"/\" INBOX",
            "s OK LIST completed"
        ]
    );
    assert_eq!(
        c.cmd("s2 LIST \"\" \"\"").await,
        ["* LIST (\\Noselect) \"/\" \"\"", "s2 OK LIST completed"]
    );
    assert_eq!(c.cmd("t NOOP").await, ["t OK NOOP completed"]);
    assert_eq!(c.cmd("u CHECK").await, ["u OK CHECK completed"]);
    assert_eq!(
        c.cmd("v ID NIL").await,
        ["* ID (\"name\" \"mini-imap\")", "v OK ID completed"]
    );
    assert_eq!(c.cmd("w EXPUNGE").await, ["w BAD Unknown command"]);
    assert_eq!(c.cmd("x CLOSE").await, ["x OK CLOSE completed"]);
    assert_eq!(
        c.cmd("y FETCH 1 FLAGS").await,
        ["y BAD FETCH: invalid arguments or not valid in this state"]
    );
    assert_eq!(
        c.cmd("z SELECT Archive").await,
        ["z NO [NONEXISTENT] No such mailbox"]
    );
    // Pipelined commands are all answered.
    c.raw(b"p1 NOOP\r\np2 SELECT INBOX\r\np3 UID FETCH 1 UID\r\n")
        .await;
    assert_eq!(c.until_tagged("p1").await, ["p1 OK NOOP completed"]);
    assert_eq!(
        c.until_tagged("p2").await.last().unwrap(),
        "p2 OK [READ-WRITE] SELECT completed"
    );
    assert_eq!(
        c.until_tagged("p3").await,
        ["* 1 FETCH (UID 1)", "p3 OK UID FETCH completed"]
    );
    server.shutdown().await;
}
