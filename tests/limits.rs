//! Configurable limits end to end, through a real Dovecot: per-listener pre-auth
//! limits (`max_line`, `max_literal`, `max_auth_failures`, `max_errors`) beside a
//! listener with the defaults, the per-source connection cap and its "busy" replies,
//! and the post-login idle timeout.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::client::LineClient;
use common::proxy::{ListenerSpec, TestProxy, write_config};
use common::rig::{HOUR, Rig, USER};

/// Writes the rig's config for `listeners` with extra `[proxy]` lines and extra lines
/// for each `[[listener]]` (in order), and starts the proxy.
async fn start(
    rig: &Rig,
    listeners: &[ListenerSpec],
    proxy_extra: &str,
    listener_extra: &[&str],
) -> TestProxy {
    let path = write_config(rig.dir.path(), listeners, &[rig.account("xoauth2")]);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut pieces = text.split("[[listener]]\n");
    let mut out =
        pieces
            .next()
            .unwrap()
            .replacen("[proxy]\n", &format!("[proxy]\n{proxy_extra}"), 1);
    for (i, p) in pieces.enumerate() {
        out.push_str("[[listener]]\n");
        out.push_str(listener_extra.get(i).copied().unwrap_or(""));
        out.push_str(p);
    }
    std::fs::write(&path, out).unwrap();
    TestProxy::start(Path::new(&path)).await
}

/// Plain IMAP to the proxy's listener `i`, greeting read.
async fn imap(proxy: &TestProxy, i: usize) -> LineClient {
    let mut c = LineClient::connect(proxy.addrs[i].port()).await;
    let greeting = c.read_line().await;
    assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
    c
}

/// Reads lines until the one tagged `tag`; returns it.
async fn tagged(c: &mut LineClient, tag: &str) -> String {
    loop {
        let line = c.read_line().await;
        if line.starts_with(&format!("{tag} ")) {
            return line;
        }
        assert!(
            line.starts_with('*'),
            "unexpected line before {tag}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preauth_limits_per_listener() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let l = || rig.listener("imap", "none", "implicit");
    let proxy = start(
        &rig,
        &[l(), l(), l()],
        "",
        &[
            "max_line = 600\nmax_literal = 256\n",
            "",
            "max_auth_failures = 1\nmax_errors = 2\n",
        ],
    )
    .await;

    // A 1000-byte LOGIN line (a long tag, the right password).
    let pw = &rig.password;
    let rest = format!(" LOGIN {USER} \"{pw}\"\r\n");
    let tag = "t".repeat(1000 - rest.len());
    let line = format!("{tag}{rest}");
    assert_eq!(line.len(), 1000);

    let mut c = imap(&proxy, 0).await;
    c.write_all(line.as_bytes()).await;
    let reply = c.read_line().await;
    assert!(reply.starts_with("* BAD"), "max_line = 600: {reply}");
    assert!(c.closed().await, "closed after a too-long line");

    let mut c = imap(&proxy, 1).await;
    c.write_all(line.as_bytes()).await;
    let reply = tagged(&mut c, &tag).await;
    assert!(
        reply.starts_with(&format!("{tag} OK")),
        "default max_line accepts 1000 bytes: {reply}"
    );

    // A literal over max_literal: BAD, no "+", and the connection goes on.
    let mut c = imap(&proxy, 0).await;
    c.send_line("a1 LOGIN {300}").await;
    let reply = c.read_line().await;
    assert!(reply.starts_with("a1 BAD"), "max_literal = 256: {reply}");
    c.send_line("a2 NOOP").await;
    let reply = tagged(&mut c, "a2").await;
    assert!(reply.starts_with("a2 OK"), "{reply}");
    // The same literal on the default listener gets its continuation.
    let mut c = imap(&proxy, 1).await;
    c.send_line("a1 LOGIN {300}").await;
    let reply = c.read_line().await;
    assert!(reply.starts_with('+'), "default max_literal: {reply}");

    // max_auth_failures = 1: the first failed login closes the connection.
    let mut c = imap(&proxy, 2).await;
    c.send_line(&format!("a1 LOGIN {USER} \"wrong-password\""))
        .await;
    let reply = c.read_line().await;
    assert!(reply.starts_with("a1 NO"), "{reply}");
    let bye = c.read_line().await;
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(c.closed().await, "closed after one failure");
    // The default (3) lets the client try again.
    let mut c = imap(&proxy, 1).await;
    c.send_line(&format!("a1 LOGIN {USER} \"wrong-password\""))
        .await;
    let reply = c.read_line().await;
    assert!(reply.starts_with("a1 NO"), "{reply}");
    c.send_line(&format!("a2 LOGIN {USER} \"{pw}\"")).await;
    let reply = tagged(&mut c, "a2").await;
    assert!(reply.starts_with("a2 OK"), "second attempt: {reply}");

    // max_errors = 2: the second protocol error closes the connection.
    let mut c = imap(&proxy, 2).await;
    c.send_line("e1 NONSENSE").await;
    let reply = c.read_line().await;
    assert!(reply.starts_with("e1 BAD"), "{reply}");
    c.send_line("e2 NONSENSE").await;
    let reply = c.read_line().await;
    assert!(reply.starts_with("e2 BAD"), "{reply}");
    let bye = c.read_line().await;
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(c.closed().await, "closed after max_errors");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_connection_cap() {
    let rig = Rig::start().await;
    let proxy = start(
        &rig,
        &[
            rig.listener("imap", "none", "implicit"),
            rig.listener("pop3", "none", "implicit"),
            rig.listener("smtp", "none", "implicit"),
            rig.listener("imap", "implicit", "implicit"),
        ],
        "max_connections_per_source = 2\n",
        &[],
    )
    .await;
    let first = imap(&proxy, 0).await;
    let _second = imap(&proxy, 0).await;

    // The third connection from 127.0.0.1, on any listener, is told "busy" and closed.
    let busy = [
        (0, "* BYE [UNAVAILABLE] too many connections"),
        (1, "-ERR [SYS/TEMP] too many connections"),
        (2, "421 4.7.0 too many connections"),
    ];
    for (i, expected) in busy {
        let mut c = LineClient::connect(proxy.addrs[i].port()).await;
        assert_eq!(c.read_line().await, expected, "listener {i}");
        assert!(c.closed().await, "listener {i} closes after the busy reply");
    }
    // Implicit TLS: no plaintext, just closed.
    let mut c = LineClient::connect(proxy.addrs[3].port()).await;
    assert!(
        c.closed().await,
        "implicit-TLS listener closes without a reply"
    );

    // Closing one frees a slot (once the proxy has seen the close).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let greeting = loop {
        let mut c = LineClient::connect(proxy.addrs[0].port()).await;
        let line = c.read_line().await;
        if line.starts_with("* OK") || Instant::now() > deadline {
            break line;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        greeting.starts_with("* OK"),
        "after closing one: {greeting}"
    );
    proxy.stop().await;

    // The global cap, with per-source counting off.
    let proxy = start(
        &rig,
        &[rig.listener("pop3", "none", "implicit")],
        "max_connections = 1\nmax_connections_per_source = 0\n",
        &[],
    )
    .await;
    let mut first = LineClient::connect(proxy.addrs[0].port()).await;
    assert!(first.read_line().await.starts_with("+OK"));
    let mut c = LineClient::connect(proxy.addrs[0].port()).await;
    assert_eq!(c.read_line().await, "-ERR [SYS/TEMP] too many connections");
    assert!(c.closed().await, "closed after the busy reply");
    proxy.stop().await;
}

/// Logs in through the proxy's listener `i`; returns the spliced connection.
async fn logged_in(proxy: &TestProxy, rig: &Rig, i: usize) -> LineClient {
    let mut c = imap(proxy, i).await;
    c.send_line(&format!("a1 LOGIN {USER} \"{}\"", rig.password))
        .await;
    let reply = tagged(&mut c, "a1").await;
    assert!(reply.starts_with("a1 OK"), "login: {reply}");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_only_quiet_sessions() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let proxy = start(
        &rig,
        // TLS upstream (buffered copy) and plain upstream (splice(2) between two
        // plain sockets): the idle timeout must hold for both.
        &[
            rig.listener("imap", "none", "implicit"),
            rig.listener("imap", "none", "none"),
        ],
        "idle_timeout = \"2s\"\n",
        &[],
    )
    .await;
    let idle = Duration::from_secs(2);

    // Busy: a NOOP every 500 ms for 4 s (twice the idle timeout) keeps it open.
    let busy = async {
        let mut c = logged_in(&proxy, &rig, 0).await;
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_secs(4) {
            n += 1;
            let tag = format!("n{n}");
            c.send_line(&format!("{tag} NOOP")).await;
            let reply = tagged(&mut c, &tag).await;
            assert!(reply.starts_with(&format!("{tag} OK")), "{reply}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        c.send_line("z NOOP").await;
        let reply = tagged(&mut c, "z").await;
        assert!(reply.starts_with("z OK"), "still open after 4 s: {reply}");
    };
    // Quiet: closed by the proxy, not before the idle timeout.
    let (p, r) = (&proxy, &rig);
    let quiet = |i| async move {
        let mut c = logged_in(p, r, i).await;
        c.set_timeout(idle + Duration::from_secs(5));
        let start = Instant::now();
        assert!(c.closed().await, "a quiet session is closed");
        let waited = start.elapsed();
        // The proxy's clock starts when it has sent the login reply, a moment before
        // ours: allow that moment.
        let early = idle - Duration::from_millis(200);
        assert!(
            waited >= early,
            "closed after {waited:?}, before the idle timeout"
        );
    };
    tokio::join!(busy, quiet(0), quiet(1));
    proxy.stop().await;
}
