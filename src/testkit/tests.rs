//! Transcript tests for [`super::mini_imap`]: raw sockets, TLS, Python's imaplib, curl.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use super::mini_imap::{ERROR_CHALLENGE_JSON, GREETING, MAX_LINE};
use super::{MiniImap, MiniImapConfig};

const USER: &str = "alice@example.com";
const TOKEN: &str = "good-token";
const STEP: Duration = Duration::from_secs(10);

fn messages() -> Arc<Vec<Bytes>> {
    let big_body: String = (0..3000)
        .map(|i| format!("line {i:05} of a long message body\r\n"))
        .collect();
    Arc::new(vec![
        Bytes::from_static(
            b"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: one\r\n\r\nHello Alice.\r\n",
        ),
        Bytes::from(format!(
            "From: carol@example.com\r\nSubject: big\r\n\r\n{big_body}"
        )),
        // Looks like protocol on purpose: literals must carry it untouched.
        Bytes::from_static(b"Subject: tricky\r\n\r\n) * BYE\r\na1 OK {5}\r\n\r\n.\r\n"),
    ])
}

fn config(tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>) -> MiniImapConfig {
    MiniImapConfig {
        validate: Arc::new(|user, token| (user == USER || user == "a,b=c") && token == TOKEN),
        messages: messages(),
        tls,
    }
}

async fn start() -> MiniImap {
    MiniImap::start("127.0.0.1:0".parse().unwrap(), config(None))
        .await
        .unwrap()
}

fn xoauth2(user: &str, token: &str) -> String {
    STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

fn oauthbearer(authzid: &str, token: &str) -> String {
    STANDARD.encode(format!(
        "n,a={authzid},\x01host=127.0.0.1\x01port=143\x01auth=Bearer {token}\x01\x01"
    ))
}

/// A line-oriented test client over any stream.
struct Client<S> {
    io: BufStream<S>,
}

impl Client<TcpStream> {
    async fn connect(addr: SocketAddr) -> Self {
        Client::over(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    fn over(stream: S) -> Self {
        Client {
            io: BufStream::new(stream),
        }
    }

    /// Next line, CRLF checked and removed.
    async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(STEP, self.io.read_until(b'\n', &mut buf))
            .await
            .expect("server too slow")
            .unwrap();
        assert!(n > 0, "unexpected EOF");
        assert!(buf.ends_with(b"\r\n"), "line without CRLF: {buf:?}");
        buf.truncate(buf.len() - 2);
        String::from_utf8(buf).unwrap()
    }

    async fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        tokio::time::timeout(STEP, self.io.read_exact(&mut buf))
            .await
            .expect("server too slow")
            .unwrap();
        buf
    }

    async fn eof(&mut self) {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(STEP, self.io.read_to_end(&mut buf))
            .await
            .expect("server did not close")
            .unwrap_or(0);
        assert_eq!(n, 0, "unexpected data: {:?}", String::from_utf8_lossy(&buf));
    }

    async fn raw(&mut self, data: &[u8]) {
        self.io.write_all(data).await.unwrap();
        self.io.flush().await.unwrap();
    }

    async fn send(&mut self, line: &str) {
        self.raw(format!("{line}\r\n").as_bytes()).await;
    }

    /// Sends a command and returns every line up to and including the tagged one.
    async fn cmd(&mut self, line: &str) -> Vec<String> {
        self.send(line).await;
        self.until_tagged(line.split(' ').next().unwrap()).await
    }

    async fn until_tagged(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line().await;
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    /// Reads FETCH responses up to the tagged line; each literal is returned with the
    /// text around it: (text before the literal, literal, text after), one per message.
    async fn fetch_literals(&mut self, tag: &str) -> (Vec<(String, Vec<u8>, String)>, String) {
        let mut out = Vec::new();
        loop {
            let l = self.line().await;
            if l.starts_with(&format!("{tag} ")) {
                return (out, l);
            }
            let open = l.rfind('{').expect("a literal");
            let n: usize = l[open + 1..l.len() - 1].parse().unwrap();
            let data = self.bytes(n).await;
            let after = self.line().await;
            out.push((l[..open].to_string(), data, after));
        }
    }
}

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

fn tls_configs() -> (
    Arc<tokio_rustls::rustls::ServerConfig>,
    Arc<tokio_rustls::rustls::ClientConfig>,
) {
    use tokio_rustls::rustls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[tokio::test]
async fn implicit_tls() {
    let (server_cfg, client_cfg) = tls_configs();
    let server = MiniImap::start("127.0.0.1:0".parse().unwrap(), config(Some(server_cfg)))
        .await
        .unwrap();
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_cfg)
        .connect(name, tcp)
        .await
        .unwrap();
    let mut c = Client::over(tls);
    assert_eq!(format!("{}\r\n", c.line().await), GREETING);
    c.cmd(&format!("a AUTHENTICATE XOAUTH2 {}", xoauth2(USER, TOKEN)))
        .await;
    c.cmd("b SELECT INBOX").await;
    c.send("c FETCH 2 BODY.PEEK[]").await;
    let (got, _) = c.fetch_literals("c").await;
    assert_eq!(got[0].1, messages()[1]);
    assert_eq!(server.logins(), 1);
    server.shutdown().await;
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const IMAPLIB_SCRIPT: &str = r#"
import hashlib, imaplib, sys
port, user, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4('127.0.0.1', port)
try:
    M.login(user, 'password')
    sys.exit('LOGIN was accepted')
except imaplib.IMAP4.error:
    pass
try:
    M.authenticate('XOAUTH2', lambda _: f'user={user}\x01auth=Bearer wrong\x01\x01'.encode())
    sys.exit('bad token was accepted')
except imaplib.IMAP4.error:
    pass
typ, _ = M.authenticate('XOAUTH2', lambda _: f'user={user}\x01auth=Bearer {token}\x01\x01'.encode())
assert typ == 'OK', typ
typ, data = M.select('INBOX')
assert typ == 'OK', typ
print('EXISTS', int(data[0]))
typ, data = M.fetch('1:*', '(FLAGS RFC822.SIZE BODY.PEEK[])')
assert typ == 'OK', typ
for item in data:
    if isinstance(item, tuple):
        meta, body = item
        size = int(meta.split(b'RFC822.SIZE ')[1].split()[0])
        assert size == len(body), (size, len(body))
        print('MSG', hashlib.sha256(body).hexdigest(), len(body))
typ, data = M.uid('SEARCH', None, 'ALL')
print('UIDS', data[0].decode())
M.logout()
"#;

#[tokio::test]
async fn python_imaplib_xoauth2() {
    let server = start().await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .arg("-c")
            .arg(IMAPLIB_SCRIPT)
            .arg(server.addr().port().to_string())
            .arg(USER)
            .arg(TOKEN)
            .output(),
    )
    .await
    .expect("python3 hangs")
    .expect("python3 is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "imaplib failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected = vec!["EXISTS 3".to_string()];
    expected.extend(
        messages()
            .iter()
            .map(|m| format!("MSG {} {}", sha256_hex(m), m.len())),
    );
    expected.push("UIDS 1 2 3".to_string());
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
    assert_eq!((server.logins(), server.failed_logins()), (1, 2));
    server.shutdown().await;
}

#[tokio::test]
async fn curl_oauth2_bearer() {
    // Never skipped: scripts/setup-test-deps.sh installs curl.
    assert!(
        std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_ok(),
        "curl is not installed: run scripts/setup-test-deps.sh"
    );
    let server = start().await;
    let msgs = messages();
    let port = server.addr().port();
    // curl picks OAUTHBEARER (it prefers it over XOAUTH2 when both are offered), then
    // SELECT and FETCH n BODY[] / UID FETCH n BODY[].
    for (url, expected) in [
        (format!("imap://127.0.0.1:{port}/INBOX;UID=2"), &msgs[1]),
        (
            format!("imap://127.0.0.1:{port}/INBOX;MAILINDEX=3"),
            &msgs[2],
        ),
    ] {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--user", &format!("{USER}:")])
            .args(["--oauth2-bearer", TOKEN, &url])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(&out.stdout[..], &expected[..], "curl {url}");
    }
    // Wrong token: curl fails, the server counts it.
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--user", &format!("{USER}:")])
        .args(["--oauth2-bearer", "nope"])
        .arg(format!("imap://127.0.0.1:{port}/INBOX;UID=1"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert_eq!((server.logins(), server.failed_logins()), (2, 1));
    server.shutdown().await;
}
