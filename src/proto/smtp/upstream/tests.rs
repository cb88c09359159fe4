//! Byte-exact transcripts of the upstream machine against scripted servers.

use super::*;
use crate::proto::testing;
use crate::proto::{Io, UpstreamTls};

pub(super) type End = testing::End<SmtpError>;

pub(super) fn login(tls: UpstreamTls, mechanism: Mechanism) -> UpstreamLogin {
    testing::upstream_login("smtp.example.com", 587, tls, mechanism)
}

pub(super) fn xoauth2_ir() -> String {
    testing::xoauth2_ir(&login(UpstreamTls::Implicit, Mechanism::Xoauth2))
}

pub(super) fn oauthbearer_ir() -> String {
    testing::oauthbearer_ir(&login(UpstreamTls::Implicit, Mechanism::Oauthbearer))
}

pub(super) fn drive(m: &mut SmtpUpstream, chunks: &[&[u8]]) -> (String, End) {
    testing::drive_upstream_without_caps(m, chunks)
}

pub(super) fn run(tls: UpstreamTls, mech: Mechanism, server: &[u8]) -> (String, End) {
    let mut m = SmtpUpstream::new(login(tls, mech), Limits::default(), "client.example");
    drive(&mut m, &[server])
}

pub(super) fn auth_err(e: UpstreamAuthError) -> End {
    End::Error(SmtpError::Auth(e))
}

/// A Dovecot submission greeting and EHLO reply (after TLS).
pub(super) const DOVECOT: &str = "220 mx.example Dovecot ready.\r\n\
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
    assert_eq!(end, End::LoggedIn(None, b"250 stray\r\n".to_vec()));
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
    assert_eq!(end, End::LoggedIn(None, vec![]));
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
    for (at, chunks) in testing::phased_reads(before, after) {
        let mut m = SmtpUpstream::new(
            login(UpstreamTls::StartTls, Mechanism::Xoauth2),
            Limits::default(),
            "client.example",
        );
        let (out, end) = drive(&mut m, &chunks);
        assert_eq!(out, expected, "{at}");
        assert_eq!(end, End::LoggedIn(None, b"X".to_vec()), "{at}");
    }
    // byte by byte
    let all = [before, after].concat();
    let bytes = testing::bytewise(&all);
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
        "client.example",
    );
    let (out, end) = drive(&mut m, &bytes);
    assert_eq!(out, expected);
    assert_eq!(end, End::LoggedIn(None, b"X".to_vec()));
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
    testing::check_rows(rows, |server| {
        run(UpstreamTls::StartTls, Mechanism::Xoauth2, server)
    });
    // injected bytes in a later read, still before tls_established()
    let mut m = SmtpUpstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
        "c",
    );
    testing::feed_until_starttls(&mut m, b"220 hi\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n", 2);
    m.feed(b"2");
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(SmtpError::StartTlsInjection))
    ));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Close))));
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
    assert_eq!(end, End::LoggedIn(None, vec![]));
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
    testing::assert_token_hidden(&mut m, 3, &xoauth2_ir());
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    fn soup() -> impl Strategy<Value = Vec<u8>> {
        testing::soup(&[
            b"220 ",
            b"220-",
            b"250-",
            b"250 ",
            b"STARTTLS",
            b"AUTH XOAUTH2 OAUTHBEARER",
            b"AUTH=XOAUTH2",
            b"235 ",
            b"334 eyJzdGF0dXMiOiI0MDEifQ==",
            b"421 ",
            b"454 4.7.0 ",
            b"535 5.7.8 ",
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
            let mut m = SmtpUpstream::new(login(tls, testing::mechanism(bearer)), Limits::default(), "c");
            let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
            let (out, end) = drive(&mut m, &chunks);
            prop_assert!(testing::tls_before_login(tls, &out, &end));
        }
    }
}

impl testing::Buffered for SmtpUpstream {
    fn input(&self) -> &crate::proto::line::InputBuffer {
        self.client.input()
    }
}
