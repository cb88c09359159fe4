//! No secret ever reaches the log, POP3 and SMTP: the real binary runs `serve --log
//! trace` with a POP3 and an SMTP listener while clients log in every way the proxy
//! accepts (POP3 USER/PASS and AUTH PLAIN with and without initial response; SMTP AUTH
//! PLAIN, AUTH LOGIN over `334` lines and with an initial user name), get passwords
//! wrong, send a message, and outlive a short-lived access token so it is refreshed at
//! the token endpoint. Alice logs in upstream with XOAUTH2, Bob with OAUTHBEARER.
//! Every secret (see `common::canary`) is then searched for in the log and in every
//! reply the clients received.

mod common;

use std::time::Duration;

use common::canary::{ALICE, BOB, CanaryRig, FIRST, HOUR, SHORT};
use common::{Pop3Client, SmtpClient, b64, plain};

const RCPT: &str = "carol@example.org";

/// USER and PASS; records both replies and returns the second.
async fn user_pass(rig: &mut CanaryRig, c: &mut Pop3Client, user: &str, pass: &str) -> String {
    let r = c.command(&format!("USER {user}")).await;
    rig.record("USER", &r);
    assert!(r.starts_with("+OK"), "USER: {r}");
    let r = c.command(&format!("PASS {pass}")).await;
    rig.record("PASS", &r);
    r
}

/// RETR 1 and QUIT on a logged-in POP3 connection.
async fn pop3_use(rig: &mut CanaryRig, mut c: Pop3Client) {
    let body = c.retr(1).await;
    assert!(body.ends_with(FIRST), "{body:?}");
    rig.record("RETR", String::from_utf8_lossy(&body));
    c.quit().await;
}

/// An SMTP connection after EHLO.
async fn smtp(rig: &mut CanaryRig, port: u16) -> SmtpClient {
    let mut c = SmtpClient::connect(port).await;
    let r = c.ehlo("client.example").await;
    rig.record("EHLO", &r);
    c
}

/// Sends a message on a logged-in SMTP connection and quits.
async fn smtp_send(rig: &mut CanaryRig, mut c: SmtpClient, from: &str, tag: &str) {
    let msg = format!("From: {from}\r\nTo: {RCPT}\r\nSubject: {tag}\r\n\r\nHello.\r\n");
    let r = c.send_mail(from, &[RCPT], msg.as_bytes()).await;
    rig.record("DATA", &r);
    assert_eq!(r.code, 250, "{r:?}");
    c.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_log_of_pop3_and_smtp_logins_holds_no_secret() {
    let mut rig = CanaryRig::start().await;
    let (pw, wrong) = (rig.password.clone(), rig.wrong.clone());
    rig.store_tokens(BOB, HOUR);
    rig.store_tokens(ALICE, SHORT);
    rig.plant_store_key();
    for (name, user, pass) in [
        ("PLAIN response", ALICE, &pw),
        ("PLAIN response of Bob", BOB, &pw),
        ("PLAIN response with the wrong password", ALICE, &wrong),
    ] {
        rig.secrets.add_payload(name, plain(user, pass));
    }
    rig.secrets.add_payload("LOGIN password line", b64(&pw));
    rig.secrets
        .add_payload("LOGIN wrong password line", b64(&wrong));
    let listeners = [rig.upstream("pop3"), rig.upstream("smtp")];
    let (proxy, ports) = rig.serve(&listeners).await;
    let (pop, sub) = (ports[0], ports[1]);
    let (mut logins, mut failures) = (0, 0);

    // POP3 USER/PASS: a wrong password, then the right one (XOAUTH2 upstream).
    let mut c = Pop3Client::connect(pop).await;
    let r = user_pass(&mut rig, &mut c, ALICE, &wrong).await;
    assert!(r.starts_with("-ERR"), "{r}");
    failures += 1;
    let r = user_pass(&mut rig, &mut c, ALICE, &pw).await;
    assert!(r.starts_with("+OK"), "{r}");
    logins += 1;
    pop3_use(&mut rig, c).await;

    // POP3 AUTH PLAIN with an initial response (OAUTHBEARER upstream).
    let mut c = Pop3Client::connect(pop).await;
    let r = c.auth("PLAIN", Some(&plain(BOB, &pw)), &[]).await;
    rig.record("AUTH PLAIN IR", &r);
    assert!(r.is_ok(), "{r:?}");
    logins += 1;
    pop3_use(&mut rig, c).await;

    // POP3 AUTH PLAIN without one: wrong, then right.
    let mut c = Pop3Client::connect(pop).await;
    let r = c.auth("PLAIN", None, &[&plain(ALICE, &wrong)]).await;
    rig.record("AUTH PLAIN wrong", &r);
    assert!(!r.is_ok() && r.continuations.len() == 1, "{r:?}");
    failures += 1;
    let r = c.auth("PLAIN", None, &[&plain(ALICE, &pw)]).await;
    rig.record("AUTH PLAIN", &r);
    assert!(r.is_ok() && r.continuations.len() == 1, "{r:?}");
    logins += 1;
    pop3_use(&mut rig, c).await;

    // SMTP AUTH PLAIN with an initial response, and a message (XOAUTH2 upstream).
    let mut c = smtp(&mut rig, sub).await;
    let r = c.auth("PLAIN", Some(&plain(ALICE, &pw)), &[]).await;
    rig.record("AUTH PLAIN IR", &r);
    assert_eq!(r.reply.code, 235, "{r:?}");
    logins += 1;
    smtp_send(&mut rig, c, ALICE, "plain").await;

    // SMTP AUTH LOGIN over 334 lines: a wrong password, then the right one
    // (OAUTHBEARER upstream), and a message.
    let mut c = smtp(&mut rig, sub).await;
    let r = c.auth("LOGIN", None, &[&b64(BOB), &b64(&wrong)]).await;
    rig.record("AUTH LOGIN wrong", &r);
    assert_eq!((r.reply.code, r.continuations.len()), (535, 2), "{r:?}");
    failures += 1;
    let r = c.auth("LOGIN", None, &[&b64(BOB), &b64(&pw)]).await;
    rig.record("AUTH LOGIN", &r);
    assert_eq!((r.reply.code, r.continuations.len()), (235, 2), "{r:?}");
    logins += 1;
    smtp_send(&mut rig, c, BOB, "login").await;

    // SMTP AUTH PLAIN without an initial response, wrong; AUTH LOGIN with the user
    // name as initial response.
    let mut c = smtp(&mut rig, sub).await;
    let r = c.auth("PLAIN", None, &[&plain(ALICE, &wrong)]).await;
    rig.record("AUTH PLAIN wrong", &r);
    assert_eq!((r.reply.code, r.continuations.len()), (535, 1), "{r:?}");
    failures += 1;
    let r = c.auth("LOGIN", Some(&b64(ALICE)), &[&b64(&pw)]).await;
    rig.record("AUTH LOGIN IR", &r);
    assert_eq!((r.reply.code, r.continuations.len()), (235, 1), "{r:?}");
    logins += 1;
    c.quit().await;
    rig.collect_tokens();

    // Alice's token expires: the next logins refresh it at the token endpoint.
    tokio::time::sleep(SHORT + Duration::from_millis(500)).await;
    let refreshes = rig.auth.grants("refresh_token");
    let mut c = Pop3Client::connect(pop).await;
    let r = user_pass(&mut rig, &mut c, ALICE, &pw).await;
    assert!(r.starts_with("+OK"), "{r}");
    logins += 1;
    pop3_use(&mut rig, c).await;
    assert!(
        rig.auth.grants("refresh_token") > refreshes,
        "not refreshed"
    );
    tokio::time::sleep(SHORT + Duration::from_millis(500)).await;
    let mut c = smtp(&mut rig, sub).await;
    let r = c.auth("PLAIN", Some(&plain(ALICE, &pw)), &[]).await;
    rig.record("AUTH PLAIN after expiry", &r);
    assert_eq!(r.reply.code, 235, "{r:?}");
    logins += 1;
    smtp_send(&mut rig, c, ALICE, "refreshed").await;
    assert!(
        rig.auth.grants("refresh_token") > refreshes + 1,
        "not refreshed"
    );
    let fields = rig.collect_tokens();
    for f in ["refresh_token", "grant_type"] {
        assert!(fields.iter().any(|x| x == f), "no {f} in {fields:?}");
    }

    rig.scrape_admin().await;
    let (status, output) = proxy.terminate().await;
    assert!(status.success(), "serve exited with {status}:\n{output}");
    assert_eq!(
        output.matches("logged in; splicing").count(),
        logins,
        "{output}"
    );
    assert_eq!(
        output.matches("local authentication failed").count(),
        failures,
        "{output}"
    );
    for evidence in ["access token refreshed", " TRACE ", "rustls::", "hyper"] {
        assert!(output.contains(evidence), "no {evidence:?} in:\n{output}");
    }
    rig.assert_no_leaks(&output);
    assert!(rig.secrets.len() >= 30, "{}", rig.secrets.len());
}
