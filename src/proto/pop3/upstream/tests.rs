//! Byte-exact transcripts of the upstream machine against scripted servers.

use super::*;
use crate::proto::testing;
use proptest::prelude::*;

pub(super) type End = testing::End<Pop3Error>;

pub(super) fn login(tls: UpstreamTls, mechanism: Mechanism) -> UpstreamLogin {
    testing::upstream_login("pop.example.com", 995, tls, mechanism)
}

pub(super) fn xoauth2_ir() -> String {
    testing::xoauth2_ir(&login(UpstreamTls::Implicit, Mechanism::Xoauth2))
}

pub(super) fn oauthbearer_ir() -> String {
    testing::oauthbearer_ir(&login(UpstreamTls::Implicit, Mechanism::Oauthbearer))
}

pub(super) fn drive(m: &mut Pop3Upstream, chunks: &[&[u8]]) -> (String, End) {
    testing::drive_upstream_without_caps(m, chunks)
}

pub(super) fn run(tls: UpstreamTls, mech: Mechanism, server: &[u8]) -> (String, End) {
    let mut m = Pop3Upstream::new(login(tls, mech), Limits::default());
    drive(&mut m, &[server])
}

pub(super) fn auth_err(e: UpstreamAuthError) -> End {
    End::Error(Pop3Error::Auth(e))
}

/// Greeting and CAPA list as Dovecot 2.3 sends them on a TLS port.
pub(super) const DOVECOT: &str = "+OK Dovecot ready.\r\n+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n\
    PIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN XOAUTH2 OAUTHBEARER\r\n.\r\n";

#[test]
fn xoauth2_success_with_leftover() {
    let server = format!("{DOVECOT}+OK Logged in.\r\n+OK 2 messages\r\n");
    let (out, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, server.as_bytes());
    assert_eq!(out, format!("CAPA\r\nAUTH XOAUTH2 {}\r\n", xoauth2_ir()));
    assert_eq!(end, End::LoggedIn(None, b"+OK 2 messages\r\n".to_vec()));
}

#[test]
fn oauthbearer_success_and_capa_details() {
    // lower case, dot-stuffed lines, bare LF, an APOP timestamp in the greeting
    let server = b"+OK ready <1.2@host>\n+OK list follows\r\n..odd\r\nsasl  oauthbearer\r\n\
                   .STLS\r\n.\r\n+OK\r\n";
    let (out, end) = run(UpstreamTls::None, Mechanism::Oauthbearer, server);
    assert_eq!(
        out,
        format!("CAPA\r\nAUTH OAUTHBEARER {}\r\n", oauthbearer_ir())
    );
    assert_eq!(end, End::LoggedIn(None, vec![]));
}

/// The whole STLS transcript (greeting, CAPA list, STLS, CAPA again, AUTH), split
/// at every position of each phase.
#[test]
fn stls_flow_split_everywhere() {
    let before: &[u8] = b"+OK hi\r\n+OK\r\nUSER\r\nSTLS\r\nSASL PLAIN\r\n.\r\n+OK Begin TLS\r\n";
    let after: &[u8] = b"+OK\r\nUSER\r\nSASL PLAIN XOAUTH2\r\n.\r\n+OK Logged in.\r\n+OK 0 0\r\n";
    let expected = format!(
        "CAPA\r\nSTLS\r\n<TLS>CAPA\r\nAUTH XOAUTH2 {}\r\n",
        xoauth2_ir()
    );
    for (at, chunks) in testing::phased_reads(before, after) {
        let mut m = Pop3Upstream::new(
            login(UpstreamTls::StartTls, Mechanism::Xoauth2),
            Limits::default(),
        );
        let (out, end) = drive(&mut m, &chunks);
        assert_eq!(out, expected, "{at}");
        assert_eq!(end, End::LoggedIn(None, b"+OK 0 0\r\n".to_vec()), "{at}");
    }
    // and byte by byte
    let all = [before, after].concat();
    let mut m = Pop3Upstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
    );
    let (out, end) = drive(&mut m, &testing::bytewise(&all));
    assert_eq!(out, expected);
    assert_eq!(end, End::LoggedIn(None, b"+OK 0 0\r\n".to_vec()));
}

#[test]
fn capabilities_from_cleartext_are_forgotten() {
    let mut m = Pop3Upstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
    );
    let (out, end) = drive(
        &mut m,
        &[
            b"+OK hi\r\n+OK\r\nSTLS\r\nSASL XOAUTH2\r\n.\r\n+OK go\r\n",
            b"+OK\r\nUSER\r\n.\r\n",
        ],
    );
    assert_eq!(out, "CAPA\r\nSTLS\r\n<TLS>CAPA\r\n");
    assert_eq!(
        end,
        auth_err(UpstreamAuthError::MechanismUnavailable("XOAUTH2"))
    );
}

#[test]
fn server_lines_are_bounded() {
    let mut server = b"+OK hi\r\n+OK\r\n".to_vec();
    server.extend(vec![b'x'; UPSTREAM_MAX_LINE]);
    let (_, end) = run(UpstreamTls::Implicit, Mechanism::Xoauth2, &server);
    assert_eq!(end, End::Error(Pop3Error::LineTooLong(UPSTREAM_MAX_LINE)));
}

#[test]
fn misuse_is_reported() {
    let mut m = Pop3Upstream::new(
        login(UpstreamTls::Implicit, Mechanism::Xoauth2),
        Limits::default(),
    );
    m.tls_established();
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(Pop3Error::Misuse(_)))
    ));
    let mut m = Pop3Upstream::new(
        login(UpstreamTls::Implicit, Mechanism::Xoauth2),
        Limits::default(),
    );
    let (_, end) = drive(&mut m, &[format!("{DOVECOT}+OK\r\n").as_bytes()]);
    assert_eq!(end, End::LoggedIn(None, vec![]));
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(Pop3Error::Misuse(_)))
    ));
}

#[test]
fn token_never_in_debug_output() {
    let mut m = Pop3Upstream::new(
        login(UpstreamTls::Implicit, Mechanism::Xoauth2),
        Limits::default(),
    );
    m.feed(DOVECOT.as_bytes());
    testing::assert_token_hidden(&mut m, 3, &xoauth2_ir());
}

fn soup() -> impl Strategy<Value = Vec<u8>> {
    testing::soup(&[
        b"+OK ",
        b"-ERR ",
        b"[SYS/TEMP] ",
        b"[AUTH] ",
        b"STLS",
        b"SASL XOAUTH2 OAUTHBEARER",
        b".",
        b"+ eyJzdGF0dXMiOiI0MDEifQ==",
        b"\r\n",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No server input makes the machine panic or loop, and with STLS required a
    /// login only completes after the handshake.
    #[test]
    fn arbitrary_server_input(input in soup(), chunk in 1usize..30, tls in 0u8..3, bearer: bool) {
        let tls = testing::upstream_tls(tls);
        let mut m = Pop3Upstream::new(login(tls, testing::mechanism(bearer)), Limits::default());
        let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
        let (out, end) = drive(&mut m, &chunks);
        prop_assert!(testing::tls_before_login(tls, &out, &end));
    }

    /// However the server's bytes are split into reads, the outcome is the same.
    #[test]
    fn chunking_invariance(cuts in proptest::collection::vec(0usize..400, 0..8)) {
        let server = format!("{DOVECOT}+ e30=\r\n-ERR [AUTH] no\r\n");
        let input = server.as_bytes();
        let whole = run(UpstreamTls::Implicit, Mechanism::Xoauth2, input);
        let chunks = testing::cut_at(input, cuts);
        let mut m = Pop3Upstream::new(login(UpstreamTls::Implicit, Mechanism::Xoauth2), Limits::default());
        prop_assert_eq!(drive(&mut m, &chunks), whole);
    }
}

impl testing::Buffered for Pop3Upstream {
    fn input(&self) -> &crate::proto::line::InputBuffer {
        &self.buf
    }
}
