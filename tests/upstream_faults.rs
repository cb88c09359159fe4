//! Upstream and client faults end to end, against a scriptable fake upstream (no
//! Dovecot), with `upstream_timeout = "1s"`: a refused connection, a silent server,
//! a TLS handshake that stalls, a reset in the middle of a FETCH, and a client that
//! vanishes in the middle of an APPEND or a DATA. Each time the other side is closed
//! promptly, nothing is made up, and the same proxy then serves a normal login.

mod common;

use std::time::Duration;

use common::certs::UpstreamPki;
use common::fake_upstream::proxy_rig::{ProxyRig, UpstreamSpec};
use common::fake_upstream::scripts::Proto;
use common::fake_upstream::{FakeUpstream, Kind, Step, send};
use common::process::free_port;
use tokio::time::Instant;

/// `proxy.upstream_timeout` in these tests.
const STEP: Duration = Duration::from_secs(1);
/// Slack on top of a configured timeout (a correctness bound, not a benchmark).
const MARGIN: Duration = Duration::from_secs(5);

async fn proxy(proto: Proto, tls: &'static str, port: u16, pki: &UpstreamPki) -> ProxyRig {
    let mut spec = UpstreamSpec::new(proto, tls, port);
    spec.upstream_ca = Some(pki.ca_path.clone());
    spec.timeout = "1s";
    ProxyRig::start(spec).await
}

/// A client login through `rig` fails temporarily within `limit`, and the log has a
/// line with every one of `needles`.
async fn fails_within(rig: &ProxyRig, limit: Duration, needles: &[&str]) {
    let started = Instant::now();
    let (_conn, reply) = rig.login().await;
    let took = started.elapsed();
    eprintln!(
        "{:?} {needles:?}: temporary failure after {took:?}",
        rig.proto
    );
    assert!(
        rig.temporary_failure(&reply),
        "expected a temporary failure: {reply}"
    );
    assert!(
        took <= limit,
        "the client waited {took:?} (limit {limit:?})"
    );
    let mut all = vec!["upstream login failed"];
    all.extend_from_slice(needles);
    rig.log_line(&all, MARGIN).await;
}

/// A normal login through `rig` works (the process is healthy).
async fn still_works(rig: &mut ProxyRig) {
    let (_conn, reply) = rig.login().await;
    assert!(
        rig.logged_in(&reply),
        "login after the fault: {reply}\n{}",
        rig.log()
    );
    assert!(
        rig.serve.child.try_wait().expect("try_wait").is_none(),
        "the proxy exited"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_prompt_temporary_error() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let port = free_port(); // nothing listens there
    let mut rig = proxy(Proto::Imap, "none", port, &pki).await;
    fails_within(&rig, MARGIN, &["cannot connect"]).await;
    let _fake = FakeUpstream::start_each_on(port, vec![Proto::Imap.direct_login(None)]).await;
    still_works(&mut rig).await;
}

#[tokio::test]
async fn a_silent_upstream_times_out_at_the_greeting() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    for proto in [Proto::Imap, Proto::Pop3, Proto::Smtp] {
        let fake = FakeUpstream::start(vec![Step::Hold]).await;
        let mut rig = proxy(proto, "none", fake.port(), &pki).await;
        // SMTP: the EHLO probe waits for the greeting too before the login does.
        let limit = if proto == Proto::Smtp { 4 * STEP } else { STEP };
        fails_within(&rig, limit + MARGIN, &["greeting: timed out"]).await;
        fake.set_script(proto.direct_login(None));
        still_works(&mut rig).await;
    }
}

#[tokio::test]
async fn a_stalled_tls_handshake_times_out() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let cfg = pki.good.server_config();
    // Implicit TLS: the ClientHello is never answered.
    let fake = FakeUpstream::start(vec![Step::Hold]).await;
    let mut rig = proxy(Proto::Imap, "implicit", fake.port(), &pki).await;
    fails_within(&rig, STEP + MARGIN, &["TLS handshake", "timed out"]).await;
    fake.set_script(Proto::Imap.direct_login(Some(&cfg)));
    still_works(&mut rig).await;
    // STARTTLS: the server says OK, then never answers the ClientHello.
    let mut stall = vec![Proto::Imap.greeting(true)];
    stall.push(Step::Expect("A1 STARTTLS"));
    stall.push(send(Proto::Imap.starttls_ok()));
    stall.push(Step::Hold);
    let fake = FakeUpstream::start(stall).await;
    let mut rig = proxy(Proto::Imap, "starttls", fake.port(), &pki).await;
    fails_within(
        &rig,
        STEP + MARGIN,
        &["STARTTLS TLS handshake", "timed out"],
    )
    .await;
    fake.set_script(Proto::Imap.starttls_login(&cfg));
    still_works(&mut rig).await;
}

#[tokio::test]
async fn a_reset_mid_fetch_closes_the_client_after_exactly_what_was_sent() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let partial: Vec<u8> = [
        &b"* 1 FETCH (BODY[] {4000}\r\nFrom: bob@example.com\r\n"[..],
        &[b'x'; 1500][..],
    ]
    .concat();
    let mut script = Proto::Imap.direct_login(None);
    script.push(Step::Expect("a2 FETCH"));
    script.push(Step::Send(partial.clone()));
    // Let the proxy read and forward it before the reset discards anything unread.
    script.push(Step::Sleep(Duration::from_millis(300)));
    script.push(Step::Reset);
    let fake = FakeUpstream::start(script).await;
    let mut rig = proxy(Proto::Imap, "none", fake.port(), &pki).await;
    let (mut conn, reply) = rig.login().await;
    assert!(rig.logged_in(&reply), "{reply}");
    conn.send_line("a2 FETCH 1 BODY[]").await;
    let got = conn.read_exact(partial.len()).await;
    assert_eq!(
        got, partial,
        "the client got other bytes than the upstream sent"
    );
    conn.set_timeout(MARGIN);
    assert!(
        conn.closed().await,
        "client not closed within {MARGIN:?} of the reset"
    );
    let reset = fake
        .wait_for(MARGIN, |e| e.kind == Kind::Reset)
        .await
        .expect("the fake reset the connection");
    eprintln!(
        "client closed {:?} after the upstream reset",
        reset.at.elapsed()
    );
    fake.set_script(Proto::Imap.direct_login(None));
    still_works(&mut rig).await;
}

/// The fake's EOF on the last connection, waited for at most `MARGIN` after `since`.
async fn eof_after(fake: &FakeUpstream, since: Instant) {
    let conn = fake.connections() - 1;
    let eof = fake
        .wait_for(MARGIN, |e| e.conn == conn && e.kind == Kind::Eof)
        .await
        .unwrap_or_else(|| panic!("the upstream saw no EOF: {:?}", fake.kinds()));
    let took = eof.at.duration_since(since);
    eprintln!("upstream saw EOF {took:?} after the client vanished");
    assert!(took <= MARGIN);
}

#[tokio::test]
async fn a_client_vanishing_mid_append_closes_the_upstream() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let mut script = Proto::Imap.direct_login(None);
    script.push(Step::Expect("a2 APPEND INBOX {1000}"));
    script.push(send("+ go ahead\r\n"));
    script.push(Step::ReadUntilEof);
    let fake = FakeUpstream::start(script).await;
    let mut rig = proxy(Proto::Imap, "none", fake.port(), &pki).await;
    let (mut conn, reply) = rig.login().await;
    assert!(rig.logged_in(&reply), "{reply}");
    conn.send_line("a2 APPEND INBOX {1000}").await;
    assert_eq!(conn.read_line().await, "+ go ahead");
    conn.write_all(&[b'y'; 300]).await;
    // Let the partial literal reach the upstream, then vanish.
    fake.wait_for(MARGIN, |e| matches!(e.kind, Kind::Data(_)))
        .await
        .expect("the literal's first bytes reached the upstream");
    let gone = Instant::now();
    drop(conn);
    eof_after(&fake, gone).await;
    fake.set_script(Proto::Imap.direct_login(None));
    still_works(&mut rig).await;
}

#[tokio::test]
async fn a_client_vanishing_mid_data_closes_the_upstream() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let probe = Proto::Smtp.direct_login(None);
    let mut login = Proto::Smtp.direct_login(None);
    login.extend([
        Step::Expect("MAIL FROM:"),
        send("250 2.1.0 ok\r\n"),
        Step::Expect("RCPT TO:"),
        send("250 2.1.5 ok\r\n"),
        Step::Expect("DATA"),
        send("354 go ahead\r\n"),
        Step::ReadUntilEof,
    ]);
    // The first connection is the proxy's EHLO probe, the second the login.
    let fake = FakeUpstream::start_each(vec![probe, login]).await;
    let mut rig = proxy(Proto::Smtp, "none", fake.port(), &pki).await;
    let (conn, reply) = rig.login().await;
    assert!(rig.logged_in(&reply), "{reply}");
    let mut c = common::SmtpClient {
        conn,
        greeting: Default::default(),
    };
    assert_eq!(c.command("MAIL FROM:<alice@example.com>").await.code, 250);
    assert_eq!(c.command("RCPT TO:<bob@example.com>").await.code, 250);
    assert_eq!(c.command("DATA").await.code, 354);
    c.conn
        .write_all(b"Subject: half\r\n\r\nonly the first")
        .await;
    fake.wait_for(MARGIN, |e| matches!(e.kind, Kind::Data(_)))
        .await
        .expect("the message's first bytes reached the upstream");
    let gone = Instant::now();
    drop(c);
    eof_after(&fake, gone).await;
    fake.set_script(Proto::Smtp.direct_login(None));
    still_works(&mut rig).await;
}
