//! Byte-exact transcripts of the upstream machine against scripted servers.

use super::*;
use crate::proto::{Io, UpstreamTls};
use secrecy::{ExposeSecret, SecretString};

pub(super) fn login(tls: UpstreamTls, mechanism: Mechanism) -> UpstreamLogin {
    UpstreamLogin {
        tls,
        mechanism,
        username: "user@example.com".into(),
        access_token: SecretString::from("tok".to_owned()),
        host: "smtp.example.com".into(),
        port: 587,
    }
}

fn xoauth2_ir() -> String {
    let l = login(UpstreamTls::Implicit, Mechanism::Xoauth2);
    sasl::xoauth2_initial_response(&l.username, &l.access_token)
        .expose_secret()
        .to_owned()
}

fn oauthbearer_ir() -> String {
    let l = login(UpstreamTls::Implicit, Mechanism::Oauthbearer);
    sasl::oauthbearer_initial_response(&l.username, &l.host, l.port, &l.access_token)
        .expose_secret()
        .to_owned()
}

#[derive(Debug, PartialEq)]
enum End {
    LoggedIn(Vec<u8>),
    Error(SmtpError),
    /// The script ran out while the machine wanted more.
    Stalled,
}

/// Feeds the server's bytes whenever the machine needs input; returns what the
/// client wrote (with `<TLS>` where the handshake happened) and how it ended.
fn drive(m: &mut SmtpUpstream, chunks: &[&[u8]]) -> (String, End) {
    let mut chunks = chunks.iter();
    let mut out = Vec::new();
    loop {
        match m.next() {
            Ok(UpstreamEvent::LoggedIn {
                capabilities,
                mut leftover,
            }) => {
                assert_eq!(capabilities, None);
                // what the driver reads later is spliced after the leftover
                leftover.extend(chunks.by_ref().copied().flatten());
                return (String::from_utf8(out).unwrap(), End::LoggedIn(leftover));
            }
            Err(Interrupt::Io(Io::Write(b))) => out.extend(b),
            Err(Interrupt::Io(Io::NeedInput)) => match chunks.next() {
                Some(c) => m.feed(c),
                None => return (String::from_utf8(out).unwrap(), End::Stalled),
            },
            Err(Interrupt::Io(Io::StartTls)) => {
                out.extend(b"<TLS>");
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) => panic!("upstream machine never closes by itself"),
            Err(Interrupt::Error(e)) => return (String::from_utf8(out).unwrap(), End::Error(e)),
        }
    }
}

fn run(tls: UpstreamTls, mech: Mechanism, server: &[u8]) -> (String, End) {
    let mut m = SmtpUpstream::new(login(tls, mech), Limits::default(), "client.example");
    drive(&mut m, &[server])
}

fn auth_err(e: UpstreamAuthError) -> End {
    End::Error(SmtpError::Auth(e))
}

/// A Dovecot submission greeting and EHLO reply (after TLS).
const DOVECOT: &str = "220 mx.example Dovecot ready.\r\n\
    250-mx.example\r\n250-8BITMIME\r\n250-AUTH OAUTHBEARER XOAUTH2\r\n250-BURL imap\r\n\
    250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n250-SIZE\r\n250 PIPELINING\r\n";

#[test]
fn xoauth2_success_with_leftover() {
    let server = format!("{DOVECOT}235 2.7.0 Logged in.\r\n250 stray\r\n");
    let (out, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(
        out,
        format!("EHLO client.example\r\nAUTH XOAUTH2 {}\r\n", xoauth2_ir())
    );
    assert_eq!(end, End::LoggedIn(b"250 stray\r\n".to_vec()));
}

#[test]
fn oauthbearer_with_multiline_greeting_and_old_auth_form() {
    let server = b"220-mx.example ESMTP\r\n220-more banner\r\n220 end\r\n\
        250-mx.example\r\n250-AUTH=OAUTHBEARER\r\n250 SIZE\r\n235 ok\r\n";
    let (out, end) = run(UpstreamTls::None, Mechanism::Oauthbearer, server);
    assert_eq!(
        out,
        format!(
            "EHLO client.example\r\nAUTH OAUTHBEARER {}\r\n",
            oauthbearer_ir()
        )
    );
    assert_eq!(end, End::LoggedIn(vec![]));
}

/// The whole STARTTLS transcript, split at every position of each phase.
#[test]
fn starttls_flow_split_everywhere() {
    let before: &[u8] = b"220-mx.example ESMTP\r\n220 hi\r\n250-mx.example\r\n\
        250-PIPELINING\r\n250 STARTTLS\r\n220 2.0.0 Ready to start TLS\r\n";
    let after = DOVECOT
        .split_once("\r\n")
        .map(|(_, ehlo)| format!("{ehlo}235 2.7.0 Logged in.\r\nX"))
        .unwrap();
    let after = after.as_bytes();
    let expected = format!(
        "EHLO client.example\r\nSTARTTLS\r\n<TLS>EHLO client.example\r\nAUTH XOAUTH2 {}\r\n",
        xoauth2_ir()
    );
    for (phase, input) in [(0, before), (1, after)] {
        for cut in 0..=input.len() {
            let mut m = SmtpUpstream::new(
                login(UpstreamTls::StartTls, Mechanism::Xoauth2),
                Limits::default(),
                "client.example",
            );
            let chunks: Vec<&[u8]> = match phase {
                0 => vec![&before[..cut], &before[cut..], after],
                _ => vec![before, &after[..cut], &after[cut..]],
            };
            let (out, end) = drive(&mut m, &chunks);
            assert_eq!(out, expected, "phase {phase} cut {cut}");
            assert_eq!(end, End::LoggedIn(b"X".to_vec()), "phase {phase} cut {cut}");
        }
    }
    // byte by byte
    let all = [before, after].concat();
    let bytes: Vec<&[u8]> = all.chunks(1).collect();
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
        "client.example",
    );
    let (out, end) = drive(&mut m, &bytes);
    assert_eq!(out, expected);
    assert_eq!(end, End::LoggedIn(b"X".to_vec()));
}

#[test]
fn extensions_from_cleartext_are_forgotten() {
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
        "c",
    );
    let (out, end) = drive(
        &mut m,
        &[
            b"220 hi\r\n250-mx\r\n250-STARTTLS\r\n250 AUTH XOAUTH2\r\n220 go\r\n",
            b"250-mx\r\n250 SIZE\r\n",
        ],
    );
    assert_eq!(out, "EHLO c\r\nSTARTTLS\r\n<TLS>EHLO c\r\n");
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2"))
    );
}

#[test]
fn starttls_missing_refused_injected() {
    let rows: &[(&[u8], &str, End)] = &[
        // not offered
        (
            b"220 hi\r\n250-mx\r\n250 AUTH XOAUTH2\r\n",
            "EHLO client.example\r\n",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        // refused
        (
            b"220 hi\r\n250-mx\r\n250 STARTTLS\r\n454 4.7.0 TLS not available\r\n",
            "EHLO client.example\r\nSTARTTLS\r\n",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        // response injection: bytes after the 220, before the handshake
        (
            b"220 hi\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n250-mx\r\n250 AUTH XOAUTH2\r\n",
            "EHLO client.example\r\nSTARTTLS\r\n",
            End::Error(SmtpError::StartTlsInjection),
        ),
    ];
    for (server, expected_out, expected_end) in rows {
        let (out, end) = run(UpstreamTls::StartTls, Mechanism::Xoauth2, server);
        assert_eq!(
            (out.as_str(), &end),
            (*expected_out, expected_end),
            "{}",
            String::from_utf8_lossy(server)
        );
    }
    // injected bytes in a later read, still before tls_established()
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
        "c",
    );
    m.feed(b"220 hi\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n");
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::StartTls))));
    m.feed(b"2");
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(SmtpError::StartTlsInjection))
    ));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Close))));
}

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

#[test]
fn ehlo_domain_is_sanitized() {
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::None, Mechanism::Xoauth2),
        Limits::default(),
        "evil\r\nMAIL FROM:<x>",
    );
    let (out, _) = drive(&mut m, &[b"220 hi\r\n"]);
    assert_eq!(out, "EHLO evilMAILFROM:<x>\r\n");
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::None, Mechanism::Xoauth2),
        Limits::default(),
        " ",
    );
    let (out, _) = drive(&mut m, &[b"220 hi\r\n"]);
    assert_eq!(out, "EHLO localhost\r\n");
}

#[test]
fn misuse_is_reported() {
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::Implicit, Mechanism::Xoauth2),
        Limits::default(),
        "c",
    );
    m.tls_established();
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(SmtpError::Misuse(_)))
    ));
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::Implicit, Mechanism::Xoauth2),
        Limits::default(),
        "c",
    );
    let (_, end) = drive(&mut m, &[format!("{DOVECOT}235 ok\r\n").as_bytes()]);
    assert_eq!(end, End::LoggedIn(vec![]));
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(SmtpError::Misuse(_)))
    ));
}

#[test]
fn token_never_in_debug_output() {
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::Implicit, Mechanism::Xoauth2),
        Limits::default(),
        "c",
    );
    m.feed(DOVECOT.as_bytes());
    let mut dump = String::new();
    for _ in 0..3 {
        let step = m.next();
        dump.push_str(&format!("{step:?} {m:?}\n"));
    }
    assert!(dump.contains("Write("), "{dump}");
    assert!(
        !dump.contains("tok\"") && !dump.contains(&xoauth2_ir()),
        "{dump}"
    );
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    fn soup() -> impl Strategy<Value = Vec<u8>> {
        let token = prop_oneof![
            Just(b"220 ".to_vec()),
            Just(b"220-".to_vec()),
            Just(b"250-".to_vec()),
            Just(b"250 ".to_vec()),
            Just(b"STARTTLS".to_vec()),
            Just(b"AUTH XOAUTH2 OAUTHBEARER".to_vec()),
            Just(b"AUTH=XOAUTH2".to_vec()),
            Just(b"235 ".to_vec()),
            Just(b"334 eyJzdGF0dXMiOiI0MDEifQ==".to_vec()),
            Just(b"421 ".to_vec()),
            Just(b"454 4.7.0 ".to_vec()),
            Just(b"535 5.7.8 ".to_vec()),
            Just(b"\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// No server input makes the machine panic or loop, and with STARTTLS required
        /// a login only completes after the handshake.
        #[test]
        fn arbitrary_server_input(input in soup(), chunk in 1usize..30, tls in 0u8..3, bearer: bool) {
            let tls = [UpstreamTls::Implicit, UpstreamTls::StartTls, UpstreamTls::None][tls as usize];
            let mech = if bearer { Mechanism::Oauthbearer } else { Mechanism::Xoauth2 };
            let mut m = SmtpUpstream::new(login(tls, mech), Limits::default(), "c");
            let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
            let (out, end) = drive(&mut m, &chunks);
            if tls == UpstreamTls::StartTls && matches!(end, End::LoggedIn(..)) {
                prop_assert!(out.contains("<TLS>"));
            }
        }
    }
}
