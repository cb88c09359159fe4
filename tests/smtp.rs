//! SMTP submission end to end: Python's smtplib authenticates to the proxy with AUTH
//! PLAIN or AUTH LOGIN; the proxy authenticates to Dovecot's submission service with
//! XOAUTH2; Dovecot relays to a sink, which must receive the message byte for byte.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::proxy::{CountingForwarder, python_smtp};
use common::rig::{HOUR, Rig, USER};
use common::{SmtpClient, plain};

const RCPT: &str = "bob@example.org";

/// A message of `size` bytes with CRLF line ends, unique per `tag`.
fn message(tag: &str, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: {USER}\r\nTo: {RCPT}\r\nSubject: {tag}\r\nMessage-ID: <{tag}@example.com>\r\n\r\n"
    )
    .into_bytes();
    let mut i = 0;
    while m.len() < size {
        // Lines starting with a dot exercise dot-stuffing on the way.
        m.extend_from_slice(format!(".line {i} of {tag}: the quick brown fox\r\n").as_bytes());
        i += 1;
    }
    m
}

async fn send_through(
    rig: &Rig,
    port: u16,
    tls: &str,
    auth: &str,
    password: &str,
    msg: &[u8],
) -> (i32, String) {
    let file = rig
        .dir
        .path()
        .join(format!("msg-{}", oauth_mail_proxy::secret::random_token(6)));
    std::fs::write(&file, msg).unwrap();
    let port = port.to_string();
    let ca = rig.local_ca();
    let file_s = file.display().to_string();
    let mut args = vec![
        "--port",
        &port,
        "--user",
        USER,
        "--tls",
        tls,
        "--auth",
        auth,
        "--mail-from",
        USER,
        "--rcpt",
        RCPT,
        "--message",
        &file_s,
    ];
    if tls != "none" {
        args.extend(["--cafile", &ca]);
    }
    python_smtp(&args, password).await
}

/// The sink's copy of the message with `tag`: Dovecot prepends a Received header,
/// everything after it must be the client's bytes.
async fn received(rig: &Rig, tag: &str, expected: &[u8]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = rig
            .dovecot
            .sink
            .messages()
            .into_iter()
            .find(|m| m.data.windows(tag.len()).any(|w| w == tag.as_bytes()));
        if let Some(m) = found {
            assert!(
                m.data.ends_with(expected),
                "message {tag} was altered in transit"
            );
            assert!(
                m.data.len() - expected.len() < 2048,
                "only a Received header was added"
            );
            assert_eq!(m.rcpt_to, [RCPT]);
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message {tag} never reached the sink"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every local TLS mode × both upstream TLS modes × AUTH PLAIN / AUTH LOGIN (with
/// and without an initial response); one of them carries a 5 MB message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submission_through_proxy_arrives_byte_for_byte() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let mut listeners = Vec::new();
    for tls in ["none", "starttls", "implicit"] {
        for upstream_tls in ["starttls", "implicit"] {
            listeners.push(rig.listener("smtp", tls, upstream_tls));
        }
    }
    let proxy = rig.proxy(&listeners, "xoauth2").await;
    let mut n = 0;
    for (i, l) in listeners.iter().enumerate() {
        for auth in ["plain", "login", "login-no-ir"] {
            n += 1;
            let tag = format!("m{n}-{}-{}-{auth}", l.tls, l.upstream_tls);
            let size = if n == 1 { 5 * 1024 * 1024 } else { 4096 };
            let msg = message(&tag, size);
            let (code, out) = send_through(
                &rig,
                proxy.addrs[i].port(),
                l.tls,
                auth,
                &rig.password,
                &msg,
            )
            .await;
            assert_eq!(code, 0, "{tag}: {out}");
            received(&rig, &tag, &msg).await;
        }
    }
    proxy.stop().await;
}

/// The client's EHLO shows the server's extensions with our AUTH line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ehlo_offers_upstream_extensions_and_local_auth() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let proxy = rig
        .proxy(
            &[rig.listener("smtp", "starttls", "starttls")],
            "oauthbearer",
        )
        .await;
    let mut c = SmtpClient::connect(proxy.addrs[0].port()).await;
    let before_tls = c.ehlo("client.example.com").await;
    assert!(before_tls.has_line("STARTTLS"), "{before_tls:?}");
    assert!(
        !before_tls.has_line("AUTH"),
        "no AUTH before TLS on a starttls listener: {before_tls:?}"
    );
    let r = c
        .command(&format!("AUTH PLAIN {}", plain(USER, &rig.password)))
        .await;
    assert_eq!(r.code, 530, "{r:?}");
    let ca = std::fs::read_to_string(rig.local_ca()).unwrap();
    let mut c = c.starttls(&ca).await;
    let ehlo = c.ehlo("client.example.com").await;
    assert!(ehlo.has_line("AUTH PLAIN LOGIN"), "{ehlo:?}");
    assert!(!ehlo.has_line("STARTTLS"), "{ehlo:?}");
    assert!(
        !ehlo
            .lines
            .iter()
            .any(|l| l.contains("XOAUTH2") || l.contains("OAUTHBEARER")),
        "{ehlo:?}"
    );
    for ext in ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"] {
        assert!(ehlo.has_line(ext), "{ext} missing from {ehlo:?}");
    }
    // MAIL before AUTH is refused by the proxy itself.
    let r = c.command(&format!("MAIL FROM:<{USER}>")).await;
    assert_eq!(r.code, 530, "{r:?}");
    // OAUTHBEARER upstream; then a message goes through the spliced session.
    let a = c
        .auth("PLAIN", Some(&plain(USER, &rig.password)), &[])
        .await;
    assert_eq!(a.reply.code, 235, "{a:?}");
    let msg = message("ehlo-test", 1000);
    let r = c.send_mail(USER, &[RCPT], &msg).await;
    assert_eq!(r.code, 250, "{r:?}");
    received(&rig, "ehlo-test", &msg).await;
    c.quit().await;
    proxy.stop().await;
}

/// Wrong password, unknown user and a foreign authorization identity get 535 and
/// never authenticate upstream (the only upstream connection is the capability
/// probe); an expired token is refreshed; a revoked grant gets a 535 that asks for
/// re-authorisation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_get_the_right_reply() {
    let rig = Rig::start().await;
    rig.store_tokens(Duration::from_secs(1));
    let fwd = CountingForwarder::start(SocketAddr::from((
        [127, 0, 0, 1],
        rig.dovecot.submissions_port,
    )))
    .await;
    let mut l = rig.listener("smtp", "none", "implicit");
    l.upstream = fwd.addr;
    let proxy = rig.proxy(&[l], "xoauth2").await;
    let port = proxy.addrs[0].port();
    let msg = message("never-sent", 100);
    let (code, out) = send_through(&rig, port, "none", "plain", "wrong-password", &msg).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("\"error\": 535"), "{out}");
    let (code, _) = send_through(&rig, port, "none", "login", "wrong-password", &msg).await;
    assert_eq!(code, 2);
    let mut c = SmtpClient::connect(port).await;
    c.ehlo("client.example.com").await;
    // alice's password, but asking to act as bob.
    let ir = common::b64(format!("bob@example.com\0{USER}\0{}", rig.password));
    let a = c.auth("PLAIN", Some(&ir), &[]).await;
    assert_eq!(a.reply.code, 535, "{a:?}");
    c.quit().await;
    assert_eq!(
        fwd.count(),
        1,
        "only the capability probe may reach upstream before a login succeeds"
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let msg = message("after-refresh", 100);
    let (code, out) = send_through(&rig, port, "none", "plain", &rig.password, &msg).await;
    assert_eq!(code, 0, "{out}");
    received(&rig, "after-refresh", &msg).await;
    assert_eq!(rig.auth.grants("refresh_token"), 1);

    rig.auth.revoke_user(USER);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, out) = send_through(&rig, port, "none", "plain", &rig.password, &msg).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("\"error\": 535") && out.contains("oauth-mail-proxy login"),
        "{out}"
    );
    proxy.stop().await;
}

/// The first upstream refuses connections: probe and login use the alternate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_alternate_upstream() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut l = rig.listener("smtp", "none", "starttls");
    l.alternate_first = Some(dead);
    let proxy = rig.proxy(&[l], "xoauth2").await;
    let msg = message("failover", 2000);
    let (code, out) = send_through(
        &rig,
        proxy.addrs[0].port(),
        "none",
        "plain",
        &rig.password,
        &msg,
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("SIZE"),
        "EHLO learned from the alternate: {out}"
    );
    received(&rig, "failover", &msg).await;
    proxy.stop().await;
}

/// curl as the client: AUTH LOGIN in clear on the loopback, AUTH PLAIN over
/// implicit TLS; both messages arrive intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_submits_through_the_proxy() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let listeners = [
        rig.listener("smtp", "none", "starttls"),
        rig.listener("smtp", "implicit", "implicit"),
    ];
    let proxy = rig.proxy(&listeners, "xoauth2").await;
    for (i, (scheme, mech)) in [("smtp", "LOGIN"), ("smtps", "PLAIN")]
        .into_iter()
        .enumerate()
    {
        let tag = format!("curl-{scheme}-{mech}");
        let msg = message(&tag, 300_000);
        let file = rig.dir.path().join(&tag);
        std::fs::write(&file, &msg).unwrap();
        let out = tokio::process::Command::new("curl")
            .args(["--silent", "--show-error", "--url"])
            .arg(format!("{scheme}://127.0.0.1:{}", proxy.addrs[i].port()))
            .args(["--mail-from", USER, "--mail-rcpt", RCPT, "--login-options"])
            .arg(format!("AUTH={mech}"))
            .args(["--cacert", &rig.local_ca(), "--upload-file"])
            .arg(&file)
            // curl reads the password from its config on stdin, not argv.
            .args(["--config", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("curl runs (scripts/setup-test-deps.sh installs it)");
        let mut child = out;
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(format!("user = \"{USER}:{}\"\n", rig.password).as_bytes())
                .await
                .unwrap();
        }
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        received(&rig, &tag, &msg).await;
    }
    proxy.stop().await;
}
