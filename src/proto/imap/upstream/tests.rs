//! Byte-exact transcripts of the upstream machine against scripted servers.

use super::*;
use crate::proto::testing;

type End = testing::End<ImapError>;

fn login(tls: UpstreamTls, mechanism: Mechanism) -> UpstreamLogin {
    testing::upstream_login("imap.example.com", 993, tls, mechanism)
}

fn xoauth2_ir() -> String {
    testing::xoauth2_ir(&login(UpstreamTls::Implicit, Mechanism::Xoauth2))
}

fn oauthbearer_ir() -> String {
    testing::oauthbearer_ir(&login(UpstreamTls::Implicit, Mechanism::Oauthbearer))
}

fn drive(m: &mut ImapUpstream, chunks: &[&[u8]]) -> (String, End) {
    testing::drive_upstream(m, chunks)
}

fn run(tls: UpstreamTls, mech: Mechanism, server: &[u8]) -> (String, End) {
    let mut m = ImapUpstream::new(login(tls, mech), Limits::default());
    drive(&mut m, &[server])
}

fn auth_err(e: UpstreamAuthError) -> End {
    End::Error(ImapError::Auth(e))
}

const CAPS_IR: &str = "IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER";

#[test]
fn sasl_ir_from_greeting_capabilities() {
    let server = format!(
        "* OK [CAPABILITY {CAPS_IR}] ready\r\nA1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n* 1 EXISTS\r\n"
    );
    let (out, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(out, format!("A1 AUTHENTICATE XOAUTH2 {}\r\n", xoauth2_ir()));
    assert_eq!(
        end,
        End::LoggedIn(Some("IMAP4rev1 IDLE".into()), b"* 1 EXISTS\r\n".to_vec())
    );
}

#[test]
fn capability_command_and_continuation() {
    let server =
        b"* OK Dovecot ready.\r\n* CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER\r\nA1 OK done\r\n\
                   + \r\n* CAPABILITY IMAP4rev1 X\r\nA2 OK Logged in\r\n";
    let (out, end) = run(UpstreamTls::None, Mechanism::Oauthbearer, server);
    assert_eq!(
        out,
        format!(
            "A1 CAPABILITY\r\nA2 AUTHENTICATE OAUTHBEARER\r\n{}\r\n",
            oauthbearer_ir()
        )
    );
    assert_eq!(end, End::LoggedIn(Some("IMAP4rev1 X".into()), vec![]));
    // capabilities only in the tagged OK's code; none after login
    let server = format!("* OK hi\r\nA1 OK [CAPABILITY {CAPS_IR}] ok\r\nA2 OK Logged in\r\n");
    let (_, end) = run(UpstreamTls::None, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(end, End::LoggedIn(None, vec![]));
}

/// The whole STARTTLS transcript, split at every position.
#[test]
fn starttls_flow_split_everywhere() {
    let server: &[u8] =
        b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=XOAUTH2 SASL-IR] hi\r\nA1 OK Begin TLS\r\n";
    let after: &[u8] =
        b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR\r\nA2 OK\r\nA3 OK Logged in\r\nX";
    let expected = format!(
        "A1 STARTTLS\r\n<TLS>A2 CAPABILITY\r\nA3 AUTHENTICATE XOAUTH2 {}\r\n",
        xoauth2_ir()
    );
    for (at, chunks) in testing::phased_reads(server, after) {
        let mut m = ImapUpstream::new(
            login(UpstreamTls::StartTls, Mechanism::Xoauth2),
            Limits::default(),
        );
        let (out, end) = drive(&mut m, &chunks);
        assert_eq!(out, expected, "{at}");
        assert_eq!(end, End::LoggedIn(None, b"X".to_vec()), "{at}");
    }
}

#[test]
fn starttls_capabilities_from_cleartext_are_forgotten() {
    let mut m = ImapUpstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
    );
    let (out, end) = drive(
        &mut m,
        &[
            b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=XOAUTH2] hi\r\nA1 OK go\r\n",
            b"A2 OK [CAPABILITY IMAP4rev1] x\r\n",
        ],
    );
    assert_eq!(out, "A1 STARTTLS\r\n<TLS>A2 CAPABILITY\r\n");
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2"))
    );
}

#[test]
fn starttls_refusals() {
    let rows: &[(&[u8], &str, End)] = &[
        // not offered (greeting caps, or CAPABILITY reply)
        (
            b"* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] hi\r\n",
            "",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        (
            b"* OK hi\r\n* CAPABILITY IMAP4rev1\r\nA1 OK\r\n",
            "A1 CAPABILITY\r\n",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        // refused
        (
            b"* OK [CAPABILITY STARTTLS] hi\r\nA1 NO no\r\n",
            "A1 STARTTLS\r\n",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        // response injection: bytes after the OK, before the handshake
        (
            b"* OK [CAPABILITY STARTTLS] hi\r\nA1 OK go\r\n* CAPABILITY AUTH=XOAUTH2\r\n",
            "A1 STARTTLS\r\n",
            End::Error(ImapError::StartTlsInjection),
        ),
    ];
    testing::check_rows(rows, |server| {
        run(UpstreamTls::StartTls, Mechanism::Xoauth2, server)
    });
    // injected bytes in a later read, still before tls_established()
    let mut m = ImapUpstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
    );
    testing::feed_until_starttls(&mut m, b"* OK [CAPABILITY STARTTLS] hi\r\nA1 OK go\r\n", 1);
    m.feed(b"x");
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(ImapError::StartTlsInjection))
    ));
}

#[test]
fn greeting_and_protocol_failures() {
    let protocol = |s: &str| auth_err(UpstreamAuthError::Protocol(s.into()));
    let rows: Vec<(&[u8], End)> = vec![
        (
            b"* PREAUTH welcome\r\n",
            protocol("server greeted with PREAUTH; refusing a session that skips authentication"),
        ),
        (
            b"* BYE too many connections\r\n",
            auth_err(UpstreamAuthError::Unavailable(
                "too many connections".into(),
            )),
        ),
        (b"A1 OK what\r\n", protocol("unexpected server greeting")),
        (b"hello\r\n", protocol("unparsable server response")),
        (
            b"* OK hi\r\nA1 NO\r\n",
            protocol("CAPABILITY command failed"),
        ),
        (
            b"* OK hi\r\nA1 OK\r\n",
            protocol("server sent no capabilities"),
        ),
        (
            b"* OK hi\r\nZ9 OK\r\n",
            protocol("server answered with an unknown tag"),
        ),
        (
            b"* OK hi\r\n+ go on\r\n",
            protocol("unexpected continuation request"),
        ),
        (
            b"* OK hi\r\n* BYE shutting down\r\n",
            auth_err(UpstreamAuthError::Unavailable("shutting down".into())),
        ),
        (
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n",
            auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2")),
        ),
    ];
    for (server, expected) in rows {
        let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server);
        assert_eq!(end, expected, "{}", String::from_utf8_lossy(server));
    }
}

#[test]
fn token_rejections() {
    let challenge = sasl::encode_base64(
        br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#,
    );
    let greeting = format!("* OK [CAPABILITY {CAPS_IR}] hi\r\n");
    // XOAUTH2: error challenge answered with an empty line
    let server = format!(
        "{greeting}+ {challenge}\r\nA1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n"
    );
    let (out, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(
        out,
        format!("A1 AUTHENTICATE XOAUTH2 {}\r\n\r\n", xoauth2_ir())
    );
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::TokenRejected {
            status: "401".into()
        })
    );
    // OAUTHBEARER: answered with ^A
    let (out, end) = run(
        UpstreamTls::Implicit,
        Mechanism::Oauthbearer,
        server.as_bytes(),
    );
    assert_eq!(
        out,
        format!(
            "A1 AUTHENTICATE OAUTHBEARER {}\r\nAQ==\r\n",
            oauthbearer_ir()
        )
    );
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::TokenRejected {
            status: "401".into()
        })
    );
    // plain NO without a challenge
    let (_, end) = run(
        UpstreamTls::Implicit,
        Mechanism::Xoauth2,
        format!("{greeting}A1 NO nope\r\n").as_bytes(),
    );
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::TokenRejected {
            status: "unknown".into()
        })
    );
    // temporary
    let (_, end) = run(
        UpstreamTls::Implicit,
        Mechanism::Xoauth2,
        format!("{greeting}A1 NO [UNAVAILABLE] Try later\r\n").as_bytes(),
    );
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::Unavailable("Try later".into()))
    );
    // BAD and a second challenge are protocol errors
    let (_, end) = run(
        UpstreamTls::Implicit,
        Mechanism::Xoauth2,
        format!("{greeting}A1 BAD syntax\r\n").as_bytes(),
    );
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::Protocol(
            "AUTHENTICATE refused: syntax".into()
        ))
    );
    let (_, end) = run(
        UpstreamTls::Implicit,
        Mechanism::Xoauth2,
        format!("{greeting}+ e30=\r\n+ e30=\r\n").as_bytes(),
    );
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::Protocol(
            "unexpected continuation request".into()
        ))
    );
}

#[test]
fn untagged_literals_are_skipped() {
    let server = format!(
        "* OK [CAPABILITY {CAPS_IR}] hi\r\n* 1 FETCH (BODY {{9}}\r\nA1 OK x\r\n {{2}}\r\n\r\n)\r\nA1 OK done\r\n"
    );
    let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(end, End::LoggedIn(None, vec![]));
}

#[test]
fn server_lines_are_bounded() {
    let mut server = b"* OK hi\r\n* ".to_vec();
    server.extend(vec![b'x'; UPSTREAM_MAX_LINE]);
    let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, &server);
    assert_eq!(end, End::Error(ImapError::LineTooLong(UPSTREAM_MAX_LINE)));
}

#[test]
fn token_never_in_debug_output() {
    let mut m = ImapUpstream::new(
        login(UpstreamTls::Implicit, Mechanism::Xoauth2),
        Limits::default(),
    );
    m.feed(format!("* OK [CAPABILITY {CAPS_IR}] hi\r\n").as_bytes());
    testing::assert_token_hidden(&mut m, 1, &xoauth2_ir());
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    fn soup() -> impl Strategy<Value = Vec<u8>> {
        testing::soup(&[
            b"* OK ",
            b"* PREAUTH ",
            b"* CAPABILITY ",
            b"[CAPABILITY IMAP4rev1 STARTTLS SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER] ",
            b"A1 OK ",
            b"A2 OK ",
            b"A3 NO ",
            b"A4 OK ",
            b"[UNAVAILABLE] ",
            b"+ eyJzdGF0dXMiOiI0MDEifQ==",
            b"{3}\r\n",
            b"\r\n",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No server input makes the machine panic or loop, and with STARTTLS required
        /// a login only completes after the handshake.
        #[test]
        fn arbitrary_server_input(input in soup(), chunk in 1usize..30, tls in 0u8..3, bearer: bool) {
            let tls = testing::upstream_tls(tls);
            let mut m = ImapUpstream::new(login(tls, testing::mechanism(bearer)), Limits::default());
            let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
            let (out, end) = drive(&mut m, &chunks);
            prop_assert!(testing::tls_before_login(tls, &out, &end));
        }
    }
}

impl testing::Buffered for ImapUpstream {
    fn input(&self) -> &crate::proto::line::InputBuffer {
        &self.buf
    }
}
