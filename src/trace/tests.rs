use super::{From, Redactor};
use crate::config::Protocol;

const SECRET: &str = "s3cr3t-Pa55word";

/// Runs `script` (who, bytes) through a redactor; returns the lines, each prefixed
/// with `C: ` or `S: `.
fn run(proto: Protocol, script: &[(From, &str)]) -> Vec<String> {
    let mut r = Redactor::new(proto);
    let mut out = Vec::new();
    for (from, bytes) in script {
        let tag = if *from == From::Client { "C: " } else { "S: " };
        for line in r.push(*from, bytes.as_bytes()) {
            out.push(format!("{tag}{line}"));
        }
    }
    out
}

/// The same script fed one byte at a time gives the same lines.
fn run_bytewise(proto: Protocol, script: &[(From, &str)]) -> Vec<String> {
    let mut r = Redactor::new(proto);
    let mut out = Vec::new();
    for (from, bytes) in script {
        let tag = if *from == From::Client { "C: " } else { "S: " };
        for b in bytes.as_bytes() {
            for line in r.push(*from, std::slice::from_ref(b)) {
                out.push(format!("{tag}{line}"));
            }
        }
    }
    out
}

fn check(proto: Protocol, script: &[(From, &str)], want: &[&str]) {
    let lines = run(proto, script);
    assert_eq!(lines, want);
    assert_eq!(run_bytewise(proto, script), want);
    for l in &lines {
        assert!(!l.contains(SECRET) && !l.contains("czNjcjN0"), "leak: {l}");
    }
}

use From::{Client as C, Server as S};

#[test]
fn imap_login_quoted_and_atom() {
    check(
        Protocol::Imap,
        &[
            (S, "* OK [CAPABILITY IMAP4rev1] ready\r\n"),
            (C, "a0 CAPABILITY\r\n"),
            (S, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\na0 OK done\r\n"),
            (C, &format!("a1 LOGIN alice@example.com \"{SECRET}\"\r\n")),
            (S, "a1 NO [AUTHENTICATIONFAILED] no\r\n"),
            (C, &format!("a2 login \"bob \\\" x\" {SECRET}\r\n")),
            (S, "a2 OK logged in\r\n"),
        ],
        &[
            "S: * OK [CAPABILITY IMAP4rev1] ready",
            "C: a0 CAPABILITY",
            "S: * CAPABILITY IMAP4rev1 AUTH=PLAIN",
            "S: a0 OK done",
            "C: a1 LOGIN alice@example.com [REDACTED]",
            "S: a1 NO [AUTHENTICATIONFAILED] no",
            "C: a2 login \"bob \\\" x\" [REDACTED]",
            "S: a2 OK logged in",
        ],
    );
}

#[test]
fn imap_login_literal_body_is_redacted() {
    // The literal body looks like a safe command: it must not be shown.
    let body = format!("x CAPABILITY{SECRET}");
    let login = format!("a1 LOGIN alice {{{}}}\r\n", body.len());
    check(
        Protocol::Imap,
        &[
            (C, &login),
            (S, "+ Ready\r\n"),
            (C, &format!("{body}\r\n")),
            (S, "a1 OK in\r\n"),
        ],
        &[
            "C: a1 LOGIN alice [REDACTED]",
            "S: + Ready",
            &format!("C: [REDACTED {} bytes]", body.len()),
            "S: a1 OK in",
        ],
    );
    // Literal user name and password (non-synchronising), CRLF inside the literal.
    let pw = format!("a\r\nb2 NOOP\r\n{SECRET}");
    let script = format!(
        "a2 LOGIN {{5+}}\r\nalice {{{}+}}\r\n{pw}\r\na3 NOOP\r\n",
        pw.len()
    );
    check(
        Protocol::Imap,
        &[(C, &script)],
        &[
            "C: a2 LOGIN [REDACTED]",
            &format!("C: [REDACTED {} bytes]", 5 + 6 + pw.len()),
            "C: a3 NOOP",
        ],
    );
}

#[test]
fn imap_refused_literal_does_not_swallow_the_next_command() {
    check(
        Protocol::Imap,
        &[
            (C, "a1 LOGIN alice {99999}\r\n"),
            (S, "a1 BAD literal too long\r\n"),
            (C, "a2 LOGOUT\r\n"),
        ],
        &[
            "C: a1 LOGIN alice [REDACTED]",
            "S: a1 BAD literal too long",
            "C: a2 LOGOUT",
        ],
    );
}

#[test]
fn imap_authenticate_and_upstream_xoauth2() {
    check(
        Protocol::Imap,
        &[
            (C, "a1 AUTHENTICATE PLAIN\r\n"),
            (S, "+ \r\n"),
            (C, "AGFsaWNlAHMzY3IzdC1QYTU1d29yZA==\r\n"),
            (S, "a1 OK yes\r\n"),
            (
                C,
                "a2 AUTHENTICATE XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2sBAQ==\r\n",
            ),
            (S, "+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"),
            (C, "\r\n"),
            (S, "a2 NO [AUTHENTICATIONFAILED] bad token\r\n"),
            (C, "a3 NOOP\r\n"),
        ],
        &[
            "C: a1 AUTHENTICATE PLAIN",
            "S: [REDACTED 2 bytes]",
            "C: [REDACTED 32 bytes]",
            "S: a1 OK yes",
            "C: a2 AUTHENTICATE XOAUTH2 [REDACTED]",
            "S: [REDACTED 26 bytes]",
            "C: [REDACTED 0 bytes]",
            "S: a2 NO [AUTHENTICATIONFAILED] bad token",
            "C: a3 NOOP",
        ],
    );
}

#[test]
fn imap_unknown_lines_are_redacted() {
    check(
        Protocol::Imap,
        &[
            (C, &format!("{SECRET}\r\n")),
            (C, &format!("a1 NOOP {SECRET}\r\n")),
            (C, &format!("a1 SELECT {SECRET}\r\n")),
            (C, "a2 ID (\"name\" \"mutt\")\r\n"),
        ],
        &[
            &format!("C: [REDACTED {} bytes]", SECRET.len()),
            &format!("C: [REDACTED {} bytes]", 8 + SECRET.len()),
            &format!("C: [REDACTED {} bytes]", 10 + SECRET.len()),
            "C: a2 ID (\"name\" \"mutt\")",
        ],
    );
}

#[test]
fn pop3_user_pass_apop_auth() {
    check(
        Protocol::Pop3,
        &[
            (S, "+OK POP3 ready\r\n"),
            (C, "CAPA\r\n"),
            (S, "+OK\r\nUSER\r\nSASL PLAIN\r\n.\r\n"),
            (C, "USER alice\r\n"),
            (S, "+OK\r\n"),
            (C, &format!("PASS {SECRET}\r\n")),
            (S, "-ERR [AUTH] no\r\n"),
            (C, &format!("APOP alice {SECRET}\r\n")),
            (S, "-ERR no\r\n"),
            (C, "AUTH PLAIN\r\n"),
            (S, "+ \r\n"),
            (C, "AGFsaWNlAHMzY3IzdC1QYTU1d29yZA==\r\n"),
            (S, "+OK in\r\n"),
            (
                C,
                "AUTH XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2sBAQ==\r\n",
            ),
            (S, "+OK in\r\n"),
            (C, "QUIT\r\n"),
        ],
        &[
            "S: +OK POP3 ready",
            "C: CAPA",
            "S: +OK",
            "S: USER",
            "S: SASL PLAIN",
            "S: .",
            "C: USER alice",
            "S: +OK",
            "C: PASS [REDACTED]",
            "S: -ERR [AUTH] no",
            "C: APOP alice [REDACTED]",
            "S: -ERR no",
            "C: AUTH PLAIN",
            "S: [REDACTED 2 bytes]",
            "C: [REDACTED 32 bytes]",
            "S: +OK in",
            "C: AUTH XOAUTH2 [REDACTED]",
            "S: +OK in",
            "C: QUIT",
        ],
    );
}

#[test]
fn smtp_ehlo_auth_login_and_data() {
    check(
        Protocol::Smtp,
        &[
            (S, "220 mx ESMTP\r\n"),
            (C, "EHLO client.example\r\n"),
            (S, "250-mx\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"),
            (C, "AUTH LOGIN\r\n"),
            (S, "334 VXNlcm5hbWU6\r\n"),
            (C, "YWxpY2U=\r\n"),
            (S, "334 UGFzc3dvcmQ6\r\n"),
            // A response that happens to read like a command stays redacted.
            (C, "QUIT\r\n"),
            (S, "535 5.7.8 no\r\n"),
            (C, "AUTH PLAIN AGFsaWNlAHMzY3IzdC1QYTU1d29yZA==\r\n"),
            (S, "235 2.7.0 ok\r\n"),
            (
                C,
                "MAIL FROM:<alice@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
            ),
            (S, "250 ok\r\n250 ok\r\n354 go\r\n"),
            (C, &format!("Subject: {SECRET}\r\n\r\nQUIT\r\n.\r\n")),
            (S, "250 queued\r\n"),
            (C, "QUIT\r\n"),
        ],
        &[
            "S: 220 mx ESMTP",
            "C: EHLO client.example",
            "S: 250-mx",
            "S: 250-AUTH PLAIN LOGIN",
            "S: 250 8BITMIME",
            "C: AUTH LOGIN",
            "S: [REDACTED 16 bytes]",
            "C: [REDACTED 8 bytes]",
            "S: [REDACTED 16 bytes]",
            "C: [REDACTED 4 bytes]",
            "S: 535 5.7.8 no",
            "C: AUTH PLAIN [REDACTED]",
            "S: 235 2.7.0 ok",
            "C: MAIL FROM:<alice@example.com>",
            "C: RCPT TO:<b@example.org>",
            "C: DATA",
            "S: 250 ok",
            "S: 250 ok",
            "S: 354 go",
            &format!("C: [REDACTED {} bytes]", 9 + SECRET.len()),
            "C: [REDACTED 0 bytes]",
            "C: [REDACTED 4 bytes]",
            "C: .",
            "S: 250 queued",
            "C: QUIT",
        ],
    );
}

#[test]
fn odd_mechanism_names_and_long_lines_are_redacted() {
    check(
        Protocol::Smtp,
        &[(C, &format!("AUTH {SECRET}=\r\n"))],
        &["C: AUTH [REDACTED]"],
    );
    let long = format!(
        "EHLO {}\r\n",
        "x".repeat(super::redact::KEEP_FOR_TESTS + 10)
    );
    let lines = run(Protocol::Smtp, &[(C, &long)]);
    assert_eq!(lines, [format!("C: [REDACTED {} bytes]", long.len() - 2)]);
    // Server lines are shown cut, control characters escaped.
    let lines = run(Protocol::Smtp, &[(S, "220 a\x1b[31mb\r\n")]);
    assert_eq!(lines, ["S: 220 a\\u{1b}[31mb"]);
}

#[test]
fn tracing_off_costs_one_pointer_per_session() {
    assert_eq!(
        std::mem::size_of::<Option<super::Tracer>>(),
        std::mem::size_of::<usize>()
    );
    // No subscriber in unit tests: the trace is off and no tracer is made.
    let t = super::Tracer::start(Protocol::Imap, super::Role::Server, || unreachable!());
    assert!(t.is_none());
}
