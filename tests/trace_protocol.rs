//! `--trace-protocol`: the real binary runs `serve --trace-protocol --log trace` while
//! IMAP, POP3 and SMTP clients log in with a planted random password (IMAP also with
//! the password as a literal). The trace shows the exchanges line by line (client
//! commands, server replies, the user names, the upstream logins), and no password,
//! token or SASL payload appears in it in any encoding (`common::canary`).

mod common;

use common::canary::{ALICE, BOB, CanaryRig, FIRST, HOUR};
use common::{ImapClient, Pop3Client, SmtpClient, plain};

const RCPT: &str = "carol@example.org";

/// The protocol trace lines of `output` (text format: target `protocol`).
fn trace_lines(output: &str) -> Vec<&str> {
    output
        .lines()
        .filter(|l| l.contains(" protocol: "))
        .collect()
}

/// Whether some trace line of `side` contains `needle`.
fn traced(lines: &[&str], side: &str, needle: &str) -> bool {
    lines
        .iter()
        .any(|l| l.contains(needle) && l.contains(&format!("side=\"{side}\"")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_protocol_shows_the_exchange_and_no_secret() {
    let mut rig = CanaryRig::start().await;
    let pw = rig.password.clone();
    rig.store_tokens(ALICE, HOUR);
    rig.store_tokens(BOB, HOUR);
    rig.plant_store_key();
    rig.secrets.add_payload("PLAIN response", plain(ALICE, &pw));
    rig.secrets
        .add_payload("PLAIN response of Bob", plain(BOB, &pw));
    let listeners = [
        rig.upstream("imap"),
        rig.upstream("pop3"),
        rig.upstream("smtp"),
    ];
    let options = ["--log", "trace", "--trace-protocol"];
    let (proxy, ports) = rig.serve_with(&listeners, &options).await;

    // IMAP: CAPABILITY, LOGIN quoted (XOAUTH2 upstream), LOGIN literal (OAUTHBEARER).
    let mut c = ImapClient::connect(ports[0]).await;
    let r = c.command("CAPABILITY").await;
    rig.record("CAPABILITY", &r);
    let r = c.command(&format!("LOGIN {ALICE} \"{pw}\"")).await;
    rig.record("LOGIN", &r);
    assert!(r.tagged.starts_with("OK"), "{r:?}");
    c.logout().await;
    let mut c = ImapClient::connect(ports[0]).await;
    let r = c
        .command_with(&format!("LOGIN {BOB} {{{}}}", pw.len()), &[&pw])
        .await;
    rig.record("LOGIN literal", &r);
    assert!(r.tagged.starts_with("OK"), "{r:?}");
    c.logout().await;

    // POP3 USER/PASS.
    let mut c = Pop3Client::connect(ports[1]).await;
    let r = c.command(&format!("USER {ALICE}")).await;
    assert!(r.starts_with("+OK"), "{r}");
    let r = c.command(&format!("PASS {pw}")).await;
    rig.record("PASS", &r);
    assert!(r.starts_with("+OK"), "{r}");
    let body = c.retr(1).await;
    assert!(body.ends_with(FIRST), "{body:?}");
    c.quit().await;

    // SMTP EHLO, AUTH PLAIN with an initial response, a message.
    let mut c = SmtpClient::connect(ports[2]).await;
    let r = c.ehlo("client.example").await;
    rig.record("EHLO", &r);
    let r = c.auth("PLAIN", Some(&plain(BOB, &pw)), &[]).await;
    rig.record("AUTH PLAIN", &r);
    assert_eq!(r.reply.code, 235, "{r:?}");
    let msg = format!("From: {BOB}\r\nTo: {RCPT}\r\nSubject: t\r\n\r\nHello.\r\n");
    let r = c.send_mail(BOB, &[RCPT], msg.as_bytes()).await;
    assert_eq!(r.code, 250, "{r:?}");
    c.quit().await;
    rig.collect_tokens();

    rig.scrape_admin().await;
    let (status, output) = proxy.terminate().await;
    assert!(status.success(), "serve exited with {status}:\n{output}");
    let lines = trace_lines(&output);
    let expected = [
        // Downstream: what the clients sent and what the proxy answered.
        ("downstream", "C: a1 CAPABILITY".to_string()),
        ("downstream", "S: * CAPABILITY".into()),
        ("downstream", format!("LOGIN {ALICE} [REDACTED]")),
        ("downstream", format!("LOGIN {BOB} [REDACTED]")),
        ("downstream", format!("C: [REDACTED {} bytes]", pw.len())),
        ("downstream", format!("C: USER {ALICE}")),
        ("downstream", "C: PASS [REDACTED]".into()),
        ("downstream", "S: +OK".into()),
        ("downstream", "C: EHLO client.example".into()),
        ("downstream", "C: AUTH PLAIN [REDACTED]".into()),
        ("downstream", "S: 235 ".into()),
        // Upstream: the proxy's logins at Dovecot.
        ("upstream", "S: * OK".into()),
        ("upstream", "AUTHENTICATE XOAUTH2 [REDACTED]".into()),
        ("upstream", "AUTHENTICATE OAUTHBEARER [REDACTED]".into()),
        ("upstream", "C: AUTH XOAUTH2 [REDACTED]".into()),
        ("upstream", "C: EHLO client.example".into()),
        ("upstream", "C: AUTH OAUTHBEARER [REDACTED]".into()),
        ("upstream", "S: 235 ".into()),
        // The SMTP listener's extension probe (no credentials).
        ("upstream", "C: EHLO localhost".into()),
    ];
    for (side, needle) in &expected {
        assert!(
            traced(&lines, side, needle),
            "no {side} trace line with {needle:?} in:\n{}",
            lines.join("\n")
        );
    }
    assert!(
        lines.iter().all(|l| l.contains(" INFO ")),
        "trace lines are at info level"
    );
    // The SMTP message body is after the login: not traced.
    assert!(!output.contains("Hello."), "{output}");
    rig.assert_no_leaks(&output);
}
