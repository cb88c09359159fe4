//! Proves the Dovecot test rig: a private Dovecot accepts tokens of the test
//! authorization server over IMAP, POP3 and submission, plain and TLS, and reports
//! bad tokens the way the proxy's upstream machines expect.

mod common;

use std::time::{Duration, Instant};

use common::{Dovecot, ImapClient, Pop3Client, SmtpClient, error_json};
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};

const ALICE: &str = "alice@example.com";
const MSG1: &[u8] = b"From: Bob <bob@example.org>\r\nTo: Alice <alice@example.com>\r\n\
Subject: first\r\nMessage-ID: <m1@example.org>\r\n\r\nHello Alice.\r\n.A line with a leading dot\r\n";
const MSG2: &[u8] = b"From: Carol <carol@example.org>\r\nTo: alice@example.com\r\n\
Subject: second\r\nMessage-ID: <m2@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe.\r\n\r\n-- \r\nCarol\r\n";

async fn setup() -> (AuthServer, Dovecot) {
    common::install_crypto_provider();
    let auth = AuthServer::start(
        "127.0.0.1:0".parse().unwrap(),
        AuthServerConfig::generated(),
    )
    .await
    .expect("start authserver");
    let dovecot = Dovecot::start(&auth).await;
    (auth, dovecot)
}

#[tokio::test]
async fn imap_xoauth2_select_and_fetch_seeded_messages() {
    let (auth, dc) = setup().await;
    dc.seed_message(ALICE, MSG1);
    dc.seed_message(ALICE, MSG2);
    let (token, _) = auth.mint_tokens(ALICE);

    let mut imap = ImapClient::connect(dc.imap_port).await;
    let caps = imap.command("CAPABILITY").await;
    for cap in ["STARTTLS", "AUTH=XOAUTH2", "AUTH=OAUTHBEARER", "SASL-IR"] {
        assert!(caps.has_untagged(cap), "{cap} missing: {caps:?}");
    }
    let r = imap.authenticate_xoauth2(ALICE, &token).await;
    assert!(r.is_ok(), "{r:?}\n{}", dc.log());
    assert!(r.continuations.is_empty());
    assert_eq!(imap.select("INBOX").await, 2);
    assert_eq!(imap.fetch_body(1).await, MSG1);
    assert_eq!(imap.fetch_body(2).await, MSG2);
    imap.logout().await;
    assert!(auth.grants("authorization_code") == 0 && auth.token_requests() == 0);
}

#[tokio::test]
async fn imaps_oauthbearer_and_imap_starttls() {
    let (auth, dc) = setup().await;
    dc.seed_message(ALICE, MSG1);
    let (token, _) = auth.mint_tokens(ALICE);

    let mut imap = ImapClient::connect_tls(dc.imaps_port, dc.ca_pem()).await;
    let r = imap
        .authenticate_oauthbearer(ALICE, &token, dc.imaps_port)
        .await;
    assert!(r.is_ok(), "{r:?}\n{}", dc.log());
    assert_eq!(imap.select("INBOX").await, 1);
    imap.logout().await;

    let imap = ImapClient::connect(dc.imap_port).await;
    let mut imap = imap.starttls(dc.ca_pem()).await;
    let r = imap.authenticate_xoauth2(ALICE, &token).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(imap.select("INBOX").await, 1);
    assert_eq!(imap.fetch_body(1).await, MSG1);
}

#[tokio::test]
async fn imap_bad_tokens_get_json_continuation_then_no_without_delay() {
    let (auth, dc) = setup().await;
    let (token, _) = auth.mint_tokens(ALICE);
    let mut imap = ImapClient::connect(dc.imap_port).await;

    for round in 0..2 {
        let started = Instant::now();
        let r = imap.authenticate_xoauth2(ALICE, "not-a-valid-token").await;
        assert_eq!(r.continuations.len(), 1, "{r:?}");
        let json = error_json(&r.continuations[0]);
        assert!(json.get("status").is_some(), "{json}");
        assert!(r.tagged.starts_with("NO [AUTHENTICATIONFAILED]"), "{r:?}");
        // nodelay: neither the failure reply nor the next attempt is penalized.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "round {round} took {:?}",
            started.elapsed()
        );
    }
    let r = imap
        .authenticate_oauthbearer(ALICE, "not-a-valid-token", dc.imap_port)
        .await;
    assert_eq!(r.continuations.len(), 1, "{r:?}");
    assert!(error_json(&r.continuations[0]).get("status").is_some());
    assert!(r.tagged.starts_with("NO"), "{r:?}");

    // A token for another user is refused too (Dovecot compares the username).
    let (bob_token, _) = auth.mint_tokens("bob@example.com");
    let r = imap.authenticate_xoauth2(ALICE, &bob_token).await;
    assert_eq!(r.status(), "NO", "{r:?}");

    let started = Instant::now();
    let r = imap.authenticate_xoauth2(ALICE, &token).await;
    assert!(r.is_ok(), "{r:?}\n{}", dc.log());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn revoked_and_expired_tokens_are_refused() {
    let (auth, dc) = setup().await;
    let (token, _) = auth.mint_tokens(ALICE);
    auth.set_token_lifetime(Duration::from_secs(1));
    let (short, _) = auth.mint_tokens("bob@example.com");
    auth.revoke_user(ALICE);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mut imap = ImapClient::connect(dc.imap_port).await;
    assert_eq!(
        imap.authenticate_xoauth2(ALICE, &token).await.status(),
        "NO"
    );
    assert_eq!(
        imap.authenticate_xoauth2("bob@example.com", &short)
            .await
            .status(),
        "NO"
    );
    let (fresh, _) = auth.mint_tokens(ALICE);
    assert!(imap.authenticate_xoauth2(ALICE, &fresh).await.is_ok());
}

#[tokio::test]
async fn password_logins_are_refused() {
    let (_auth, dc) = setup().await;
    let mut imap = ImapClient::connect(dc.imap_port).await;
    let r = imap.command("LOGIN alice@example.com secret").await;
    assert_eq!(r.status(), "NO", "{r:?}");
    let r = imap
        .command(&format!(
            "AUTHENTICATE PLAIN {}",
            common::plain(ALICE, "secret")
        ))
        .await;
    assert_eq!(r.status(), "NO", "{r:?}");
}

#[tokio::test]
async fn introspection_failure_is_a_temporary_failure_in_all_protocols() {
    let (auth, dc) = setup().await;
    let (token, _) = auth.mint_tokens(ALICE);
    let mut imap = ImapClient::connect(dc.imap_port).await;
    let mut pop = Pop3Client::connect(dc.pop3_port).await;
    let mut smtp = SmtpClient::connect(dc.submission_port).await;
    smtp.ehlo("client.test").await;
    auth.shutdown().await;

    // No error-JSON continuation in this case: the failure comes at once.
    let r = imap.authenticate_xoauth2(ALICE, &token).await;
    assert!(r.tagged.starts_with("NO [UNAVAILABLE]"), "{r:?}");
    assert!(r.continuations.is_empty(), "{r:?}");
    let r = pop.auth_xoauth2(ALICE, &token).await;
    assert!(
        r.continuations.is_empty() && r.reply.starts_with("-ERR [SYS/TEMP]"),
        "{r:?}"
    );
    let r = smtp.auth_xoauth2(ALICE, &token).await;
    assert!(r.continuations.is_empty(), "{r:?}");
    assert_eq!(
        (r.reply.code, r.reply.lines[0].get(..5)),
        (454, Some("4.7.0")),
        "{r:?}"
    );
}

#[tokio::test]
async fn pop3_xoauth2_and_pop3s_oauthbearer() {
    let (auth, dc) = setup().await;
    dc.seed_message(ALICE, MSG1);
    dc.seed_message(ALICE, MSG2);
    let (token, _) = auth.mint_tokens(ALICE);

    let mut pop = Pop3Client::connect(dc.pop3_port).await;
    let r = pop.auth_xoauth2(ALICE, "bad-token").await;
    assert_eq!(r.continuations.len(), 1, "{r:?}");
    assert!(error_json(&r.continuations[0]).get("status").is_some());
    assert!(r.reply.starts_with("-ERR [AUTH]"), "{r:?}");
    let r = pop.auth_xoauth2(ALICE, &token).await;
    assert!(r.is_ok(), "{r:?}\n{}", dc.log());
    assert_eq!(pop.stat().await, (2, (MSG1.len() + MSG2.len()) as u64));
    assert_eq!(pop.retr(1).await, MSG1);
    assert_eq!(pop.retr(2).await, MSG2);
    pop.quit().await;

    let mut pop = Pop3Client::connect_tls(dc.pop3s_port, dc.ca_pem()).await;
    let r = pop.auth_oauthbearer(ALICE, &token, dc.pop3s_port).await;
    assert!(r.is_ok(), "{r:?}");
    pop.quit().await;
}

#[tokio::test]
async fn submission_relays_to_the_sink() {
    let (auth, dc) = setup().await;
    let (token, _) = auth.mint_tokens(ALICE);
    let message =
        b"From: alice@example.com\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHi Bob.\r\n.dot\r\n";

    let mut smtp = SmtpClient::connect(dc.submission_port).await;
    let ehlo = smtp.ehlo("client.test").await;
    assert!(ehlo.has_line("STARTTLS"), "{ehlo:?}");
    assert!(
        ehlo.lines
            .iter()
            .any(|l| l.starts_with("AUTH ") && l.contains("XOAUTH2")),
        "{ehlo:?}"
    );
    let r = smtp.auth_xoauth2(ALICE, "bad-token").await;
    assert_eq!(r.continuations.len(), 1, "{r:?}");
    assert!(error_json(&r.continuations[0]).get("status").is_some());
    assert_eq!(r.reply.code, 535, "{r:?}");
    let r = smtp.auth_xoauth2(ALICE, &token).await;
    assert_eq!(r.reply.code, 235, "{r:?}\n{}", dc.log());
    let r = smtp
        .send_mail(ALICE, &["bob@example.org", "carol@example.net"], message)
        .await;
    assert_eq!(r.code, 250, "{r:?}\n{}", dc.log());
    smtp.quit().await;

    let got = dc.sink.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].mail_from, ALICE);
    assert_eq!(got[0].rcpt_to, ["bob@example.org", "carol@example.net"]);
    assert!(
        got[0].data.ends_with(message),
        "{:?}",
        String::from_utf8_lossy(&got[0].data)
    );
    assert!(got[0].raw_data.ends_with(b"Hi Bob.\r\n..dot\r\n"));

    // Implicit TLS with OAUTHBEARER, and STARTTLS.
    let mut smtp = SmtpClient::connect_tls(dc.submissions_port, dc.ca_pem()).await;
    smtp.ehlo("client.test").await;
    let r = smtp
        .auth_oauthbearer(ALICE, &token, dc.submissions_port)
        .await;
    assert_eq!(r.reply.code, 235, "{r:?}");
    assert_eq!(
        smtp.send_mail(ALICE, &["dave@example.org"], message)
            .await
            .code,
        250
    );
    smtp.quit().await;
    let mut smtp = SmtpClient::connect(dc.submission_port).await;
    smtp.ehlo("client.test").await;
    let mut smtp = smtp.starttls(dc.ca_pem()).await;
    smtp.ehlo("client.test").await;
    assert_eq!(smtp.auth_xoauth2(ALICE, &token).await.reply.code, 235);
    smtp.quit().await;
    let got = dc.sink.wait_for_messages(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].rcpt_to, ["dave@example.org"]);
}

#[tokio::test]
async fn sixty_concurrent_imap_sessions() {
    let (auth, dc) = setup().await;
    dc.seed_message(ALICE, MSG1);
    let (token, _) = auth.mint_tokens(ALICE);
    let mut sessions = tokio::task::JoinSet::new();
    for i in 0..60 {
        let (token, port, ca) = (token.clone(), dc.imap_port, dc.ca_pem().to_owned());
        let tls_port = dc.imaps_port;
        sessions.spawn(async move {
            let mut imap = if i % 2 == 0 {
                ImapClient::connect(port).await
            } else {
                ImapClient::connect_tls(tls_port, &ca).await
            };
            let r = imap.authenticate_xoauth2(ALICE, &token).await;
            assert!(r.is_ok(), "session {i}: {r:?}");
            assert_eq!(imap.select("INBOX").await, 1);
            imap
        });
    }
    let mut open = Vec::new();
    while let Some(r) = sessions.join_next().await {
        open.push(r.expect("session task"));
    }
    // All 60 are logged in at the same time; each still answers.
    for imap in &mut open {
        assert!(imap.command("NOOP").await.is_ok());
    }
    assert_eq!(open.len(), 60);
}
