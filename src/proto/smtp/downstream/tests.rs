//! Byte-exact transcripts of the downstream machine.

use super::*;
use proptest::prelude::*;

pub(super) const GREETING: &[u8] = b"220 mx.example ESMTP oauth-mail-proxy ready\r\n";

/// What the probe learned from a typical upstream (Dovecot / Gmail style).
pub(super) fn upstream_extensions() -> Vec<String> {
    [
        "SIZE 35882577",
        "8BITMIME",
        "PIPELINING",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
        "DSN",
        "AUTH PLAIN XOAUTH2",
        "STARTTLS",
    ]
    .map(str::to_owned)
    .to_vec()
}

const EHLO_COMMON: &[u8] = b"250-mx.example\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n\
250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n";

/// The EHLO reply when the client may authenticate.
pub(super) fn ehlo_auth() -> Vec<u8> {
    [EHLO_COMMON, b"250 AUTH PLAIN LOGIN\r\n"].concat()
}

/// The EHLO reply on a STARTTLS listener before the handshake.
pub(super) fn ehlo_starttls() -> Vec<u8> {
    [EHLO_COMMON, b"250 STARTTLS\r\n"].concat()
}

use crate::proto::testing::{self, Ev as GenericEv};
pub(super) use crate::proto::testing::{Verdict, login, text};

pub(super) type Ev = GenericEv<SmtpError>;

/// What the transcripts pass to `accept()` (which SMTP ignores).
pub(super) const ACCEPT_CAPS: Option<&str> = Some("ignored");

/// The transcript driver; logins are accepted by default.
pub(super) fn drive(
    m: &mut SmtpDownstream,
    chunks: &[&[u8]],
    verdicts: &[Verdict],
) -> (Vec<u8>, Vec<Ev>) {
    testing::drive_downstream(m, chunks, verdicts, ACCEPT_CAPS)
}

pub(super) fn machine(tls: LocalTls, limits: Limits) -> SmtpDownstream {
    SmtpDownstream::new(tls, limits, "mx.example", upstream_extensions())
}

pub(super) fn run(tls: LocalTls, input: &[u8], verdicts: &[Verdict]) -> (String, Vec<Ev>) {
    run_limits(tls, Limits::default(), input, verdicts)
}

pub(super) fn run_limits(
    tls: LocalTls,
    limits: Limits,
    input: &[u8],
    v: &[Verdict],
) -> (String, Vec<Ev>) {
    let (out, evs) = drive(&mut machine(tls, limits), &[input], v);
    (String::from_utf8(out).unwrap(), evs)
}

#[test]
fn greeting_and_ehlo_in_each_tls_state() {
    for (tls, ehlo) in [
        (LocalTls::None, ehlo_auth()),
        (LocalTls::Active, ehlo_auth()),
        (LocalTls::StartTlsRequired, ehlo_starttls()),
    ] {
        let (out, evs) = run(tls, b"", &[]);
        assert_eq!(out.as_bytes(), GREETING);
        assert!(evs.is_empty());
        let (out, _) = run(tls, b"EHLO client.example\r\n", &[]);
        assert_eq!(out, text(&[GREETING, &ehlo]), "{tls:?}");
    }
    // no extensions from the upstream, odd lines dropped, host name sanitized
    let exts = vec!["AUTH=LOGIN".into(), "X\r\n250 Y".into(), "starttls".into()];
    let mut m = SmtpDownstream::new(LocalTls::Active, Limits::default(), "m x\r\n", exts);
    let (out, _) = drive(&mut m, &[b"EHLO c\r\n"], &[]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "220 mx ESMTP oauth-mail-proxy ready\r\n250-mx\r\n250 AUTH PLAIN LOGIN\r\n"
    );
}

#[test]
fn helo_noop_rset_help_vrfy_quit() {
    let mut m = machine(LocalTls::Active, Limits::default());
    assert_eq!(m.client_domain(), None);
    let (out, evs) = drive(
        &mut m,
        &[b"HELO old.example\r\nnoop\r\nRSET\r\nHELP\r\nVRFY root\r\nEXPN all\r\nQUIT\r\nNOOP\r\n"],
        &[],
    );
    let expected = text(&[
        GREETING,
        b"250 mx.example\r\n",
        b"250 2.0.0 OK\r\n",
        b"250 2.0.0 OK\r\n",
        b"502 5.5.1 Command not implemented\r\n",
        b"252 2.5.2 Cannot VRFY user\r\n",
        b"502 5.5.1 Command not implemented\r\n",
        b"221 2.0.0 Bye\r\n",
    ]);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(evs, [Ev::Close]);
    assert_eq!(m.client_domain(), Some("old.example"));
}

#[test]
fn misuse_is_reported_not_panicked() {
    let mut m = machine(LocalTls::Active, Limits::default());
    m.accept(None); // nothing pending: ignored
    m.reject(LoginRejection::BadCredentials);
    m.tls_established();
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(SmtpError::Misuse(_)))
    ));
    let mut m = machine(LocalTls::Active, Limits::default());
    m.feed(b"EHLO c\r\nAUTH PLAIN AGEAYg==\r\n");
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Ok(DownstreamEvent::Login(_))));
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(SmtpError::Misuse(_)))
    ));
    m.accept(None);
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Ok(DownstreamEvent::Done { .. })));
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(SmtpError::Misuse(_)))
    ));
}

#[test]
fn debug_output_has_no_password() {
    for input in [
        &b"EHLO c\r\nAUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n"[..],
        b"EHLO c\r\nAUTH LOGIN YWxpY2U=\r\naHVudGVyMg==\r\n",
    ] {
        let mut m = machine(LocalTls::Active, Limits::default());
        testing::assert_secrets_hidden(&mut m, input, &["hunter2", "aHVudGVyMg"]);
    }
}

/// Commands a client might send before AUTH (no QUIT, no STARTTLS).
fn client_line() -> impl Strategy<Value = Vec<u8>> {
    testing::one_of(&[
        b"EHLO c\r\n",
        b"NOOP\r\n",
        b"MAIL FROM:<>\r\n",
        b"BDAT 3\r\nx\r\n",
        b"AUTH PLAIN AHUAcA==\r\n",
        b"AUTH LOGIN\r\ndQ==\r\ncA==\r\n",
        b"AUTH PLAIN\r\n*\r\n",
        b"garbage\n",
    ])
}

proptest! {
    /// However the bytes are split into reads, the transcript is the same.
    #[test]
    fn chunking_invariance(lines in proptest::collection::vec(client_line(), 1..6),
                           cuts in proptest::collection::vec(0usize..200, 0..8)) {
        let input = lines.concat();
        let limits = testing::lenient();
        let rejects = vec![Verdict::Reject(LoginRejection::BadCredentials); 10];
        let (whole_out, whole_evs) = run_limits(LocalTls::Active, limits, &input, &rejects);
        let chunks = testing::cut_at(&input, cuts);
        let (out, evs) = drive(&mut machine(LocalTls::Active, limits), &chunks, &rejects);
        prop_assert_eq!(String::from_utf8(out).unwrap(), whole_out);
        prop_assert_eq!(evs, whole_evs);
    }
}

impl testing::Buffered for SmtpDownstream {
    fn input(&self) -> &crate::proto::line::InputBuffer {
        &self.buf
    }
}
