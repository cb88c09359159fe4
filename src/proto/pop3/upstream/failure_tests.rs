//! How the upstream machine fails: STLS refused or injected, odd greetings and
//! replies, and every way a server says no to the token.

use super::tests::*;
use super::*;
use crate::proto::testing;

#[test]
fn stls_refusals() {
    let rows: &[(&[u8], &str, End)] = &[
        // not offered
        (
            b"+OK hi\r\n+OK\r\nSASL XOAUTH2\r\n.\r\n",
            "CAPA\r\n",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        // no CAPA at all
        (
            b"+OK hi\r\n-ERR unknown command\r\n",
            "CAPA\r\n",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        // refused
        (
            b"+OK hi\r\n+OK\r\nSTLS\r\n.\r\n-ERR no\r\n",
            "CAPA\r\nSTLS\r\n",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        // response injection: bytes after the +OK, before the handshake
        (
            b"+OK hi\r\n+OK\r\nSTLS\r\n.\r\n+OK go\r\n+OK\r\n",
            "CAPA\r\nSTLS\r\n",
            End::Error(Pop3Error::StartTlsInjection),
        ),
    ];
    testing::check_rows(rows, |server| {
        run(UpstreamTls::StartTls, Mechanism::Xoauth2, server)
    });
    // injected bytes in a later read, still before tls_established()
    let mut m = Pop3Upstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
    );
    testing::feed_until_starttls(&mut m, b"+OK hi\r\n+OK\r\nSTLS\r\n.\r\n+OK go\r\n", 2);
    m.feed(b"x");
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(Pop3Error::StartTlsInjection))
    ));
}

#[test]
fn greeting_and_protocol_failures() {
    let protocol = |s: &str| auth_err(UpstreamAuthError::Protocol(s.into()));
    let rows: Vec<(&[u8], End)> = vec![
        (
            b"-ERR [SYS/TEMP] too many connections\r\n",
            auth_err(UpstreamAuthError::Unavailable(
                "too many connections".into(),
            )),
        ),
        (b"* OK hi\r\n", protocol("unparsable server response")),
        (b"+ go\r\n", protocol("unexpected continuation request")),
        (
            b"+OK hi\r\n+ go\r\n",
            protocol("unexpected continuation request"),
        ),
        (
            b"+OK hi\r\n+OK\r\nSASL\ra\r\n",
            protocol("unparsable server response"),
        ),
        (
            b"+OK hi\r\n+OK\r\nSASL PLAIN\r\n.\r\n",
            auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2")),
        ),
        (
            b"+OK hi\r\n+OK\r\nSASL OAUTHBEARER\r\n.\r\n",
            auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2")),
        ),
        // "XOAUTH2" outside the SASL line does not count
        (
            b"+OK hi\r\n+OK\r\nXOAUTH2\r\nX-SASL XOAUTH2\r\n.\r\n",
            auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2")),
        ),
        (b"+OK hi\r\n+OK\r\nSASL XOAUTH2\r\n", End::Stalled),
    ];
    for (server, expected) in rows {
        let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server);
        assert_eq!(end, expected, "{}", String::from_utf8_lossy(server));
    }
}

#[test]
fn token_rejections() {
    // Dovecot's XOAUTH2 challenge, answered with an empty line
    let challenge = sasl::encode_base64(br#"{"status":"401","schemes":"bearer","scope":"mail"}"#);
    let server = format!("{DOVECOT}+ {challenge}\r\n-ERR [AUTH] Authentication failed.\r\n");
    let (out, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(
        out,
        format!("CAPA\r\nAUTH XOAUTH2 {}\r\n\r\n", xoauth2_ir())
    );
    let rejected = |s: &str| {
        auth_err(UpstreamAuthError::TokenRejected {
            status: s.to_owned(),
        })
    };
    assert_eq!(end, rejected("401"));
    // Dovecot's OAUTHBEARER challenge, answered with ^A
    let challenge = sasl::encode_base64(br#"{"status":"invalid_token"}"#);
    let server = format!("{DOVECOT}+ {challenge}\r\n-ERR [AUTH] Authentication failed.\r\n");
    let (out, end) = run(
        UpstreamTls::Implicit,
        Mechanism::Oauthbearer,
        server.as_bytes(),
    );
    assert_eq!(
        out,
        format!("CAPA\r\nAUTH OAUTHBEARER {}\r\nAQ==\r\n", oauthbearer_ir())
    );
    assert_eq!(end, rejected("invalid_token"));
    // the -ERR without a challenge, and the ways a server says "later"
    let rows: Vec<(&str, End)> = vec![
        ("-ERR [AUTH] nope", rejected("unknown")),
        ("-ERR nope", rejected("unknown")),
        (
            "-ERR [SYS/TEMP] Temporary authentication failure.",
            auth_err(UpstreamAuthError::Unavailable(
                "Temporary authentication failure.".into(),
            )),
        ),
        (
            "-ERR [SYS/TEMP/X] a",
            auth_err(UpstreamAuthError::Unavailable("a".into())),
        ),
        (
            "-ERR [UNAVAILABLE] b",
            auth_err(UpstreamAuthError::Unavailable("b".into())),
        ),
        (
            "-ERR [IN-USE] locked",
            auth_err(UpstreamAuthError::Unavailable("locked".into())),
        ),
        ("-ERR [SYS/TEMPX] c", rejected("unknown")),
        (
            "-ERR [SYS/PERM] d",
            auth_err(UpstreamAuthError::Protocol("AUTH refused: d".into())),
        ),
    ];
    for (reply, expected) in rows {
        let server = format!("{DOVECOT}{reply}\r\n");
        let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
        assert_eq!(end, expected, "{reply}");
    }
    // a challenge that is not JSON, then SYS/TEMP: temporary wins
    let server = format!("{DOVECOT}+ \r\n-ERR [SYS/TEMP] x\r\n");
    let (out, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert!(out.ends_with("\r\n\r\n"));
    assert_eq!(end, auth_err(UpstreamAuthError::Unavailable("x".into())));
    // a second challenge is a protocol error
    let server = format!("{DOVECOT}+ e30=\r\n+ e30=\r\n");
    let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::Protocol(
            "unexpected continuation request".into()
        ))
    );
}
