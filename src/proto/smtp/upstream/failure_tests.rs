//! How the upstream machine reports what goes wrong: token rejections and temporary
//! failures after AUTH, refusals and garbage during the opening, oversized replies.

use super::tests::*;
use super::*;
use crate::proto::UpstreamTls;

#[test]
fn token_rejections() {
    // Dovecot's error challenges, base64 of its JSON
    let xoauth2 = sasl::encode_base64(br#"{"status":"401","schemes":"bearer","scope":"mail"}"#);
    let bearer = sasl::encode_base64(br#"{"status":"invalid_token"}"#);
    let fail = "535 5.7.8 Authentication failed\r\n";
    // XOAUTH2: error challenge answered with an empty line
    let server = format!("{DOVECOT}334 {xoauth2}\r\n{fail}");
    let (out, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(
        out,
        format!(
            "EHLO client.example\r\nAUTH XOAUTH2 {}\r\n\r\n",
            xoauth2_ir()
        )
    );
    let rejected = |s: &str| {
        auth_err(UpstreamAuthError::TokenRejected {
            status: s.to_owned(),
        })
    };
    assert_eq!(end, rejected("401"));
    // OAUTHBEARER: answered with ^A
    let server = format!("{DOVECOT}334 {bearer}\r\n{fail}");
    let (out, end) = run(
        UpstreamTls::Implicit,
        Mechanism::Oauthbearer,
        server.as_bytes(),
    );
    assert_eq!(
        out,
        format!(
            "EHLO client.example\r\nAUTH OAUTHBEARER {}\r\nAQ==\r\n",
            oauthbearer_ir()
        )
    );
    assert_eq!(end, rejected("invalid_token"));
    // the table of final replies (after no challenge, or after one)
    let unavailable = |s: &str| auth_err(UpstreamAuthError::Unavailable(s.to_owned()));
    let protocol = |s: &str| auth_err(UpstreamAuthError::Protocol(s.to_owned()));
    let rows: Vec<(String, End)> = vec![
        (fail.to_owned(), rejected("unknown")),
        (
            "454 4.7.0 Temporary authentication failure\r\n".into(),
            unavailable("Temporary authentication failure"),
        ),
        (
            format!("334 {xoauth2}\r\n454 4.7.0 Internal error\r\n"),
            unavailable("Internal error"),
        ),
        (
            "421 4.3.2 Shutting down\r\n".into(),
            unavailable("Shutting down"),
        ),
        (
            "534-5.7.9 Please log in\r\n534 5.7.9 with your browser\r\n".into(),
            rejected("unknown"),
        ),
        (
            "504 5.5.4 Unrecognized authentication type\r\n".into(),
            protocol("AUTH refused: Unrecognized authentication type"),
        ),
        (
            format!("334 {xoauth2}\r\n334 {xoauth2}\r\n"),
            protocol("unexpected 334 challenge"),
        ),
        ("250 what\r\n".into(), protocol("unexpected reply to AUTH")),
        (format!("334 not json\r\n{fail}"), rejected("unknown")),
    ];
    for (reply, expected) in rows {
        let server = format!("{DOVECOT}{reply}");
        let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
        assert_eq!(end, expected, "{reply}");
    }
}

#[test]
fn greeting_ehlo_and_protocol_failures() {
    let protocol = |s: &str| auth_err(UpstreamAuthError::Protocol(s.into()));
    let unavailable = |s: &str| auth_err(UpstreamAuthError::Unavailable(s.into()));
    let rows: Vec<(&[u8], End)> = vec![
        (
            b"421 4.3.2 mx.example busy\r\n",
            unavailable("mx.example busy"),
        ),
        (b"554 no service here\r\n", unavailable("no service here")),
        (b"250 hello?\r\n", protocol("unexpected server greeting")),
        (b"* OK IMAP\r\n", protocol("unparsable server reply")),
        (
            b"220-a\r\n250 b\r\n",
            protocol("reply code changed within a multi-line reply"),
        ),
        (
            b"220 hi\r\n550 5.7.1 go away\r\n",
            protocol("EHLO refused: go away"),
        ),
        (b"220 hi\r\n451 4.3.0 later\r\n", unavailable("later")),
        (
            b"220 hi\r\n354 what\r\n",
            protocol("unexpected reply to EHLO"),
        ),
        (
            b"220 hi\r\n250-mx\r\n250 AUTH PLAIN LOGIN\r\n",
            auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2")),
        ),
        (
            b"220 hi\r\n250 mx\r\n",
            auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2")),
        ),
        (b"220 hi\r\n250-mx\r\n", End::Stalled),
    ];
    for (server, expected) in rows {
        let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server);
        assert_eq!(end, expected, "{}", String::from_utf8_lossy(server));
    }
}

#[test]
fn server_lines_and_replies_are_bounded() {
    let mut server = b"220 ".to_vec();
    server.extend(vec![b'x'; UPSTREAM_MAX_LINE]);
    let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, &server);
    assert_eq!(end, End::Error(SmtpError::LineTooLong(UPSTREAM_MAX_LINE)));
    // many short lines of one reply
    let server = "220-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n".repeat(2000);
    let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(end, End::Error(SmtpError::ReplyTooLong(UPSTREAM_MAX_LINE)));
}
