//! Byte-exact transcripts of the downstream machine.

use super::*;

pub(super) const GREETING: &[u8] = b"+OK oauth-mail-proxy ready\r\n";
pub(super) const CAPA_PLAIN: &[u8] = b"+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\n\
    RESP-CODES\r\nAUTH-RESP-CODE\r\nIMPLEMENTATION oauth-mail-proxy\r\n.\r\n";
pub(super) const CAPA_STARTTLS: &[u8] = b"+OK Capability list follows\r\nSTLS\r\n\
    RESP-CODES\r\nAUTH-RESP-CODE\r\nIMPLEMENTATION oauth-mail-proxy\r\n.\r\n";
pub(super) const STLS_REQUIRED: &[u8] = b"-ERR [SYS/PERM] STLS required\r\n";

use crate::proto::testing::{self, Ev as GenericEv};
pub(super) use crate::proto::testing::{Verdict, lenient, login, text};

pub(super) type Ev = GenericEv<Pop3Error>;

/// What the transcripts pass to `accept()` (which POP3 ignores).
pub(super) const ACCEPT_CAPS: Option<&str> = Some("TOP UIDL");

/// The transcript driver; logins are accepted by default.
pub(super) fn drive(
    m: &mut Pop3Downstream,
    chunks: &[&[u8]],
    verdicts: &[Verdict],
) -> (Vec<u8>, Vec<Ev>) {
    testing::drive_downstream(m, chunks, verdicts, ACCEPT_CAPS)
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
    let mut m = Pop3Downstream::new(tls, limits);
    let (out, evs) = drive(&mut m, &[input], v);
    (String::from_utf8(out).unwrap(), evs)
}

#[test]
fn greeting_and_capa() {
    for (tls, capa) in [
        (LocalTls::None, CAPA_PLAIN),
        (LocalTls::Active, CAPA_PLAIN),
        (LocalTls::StartTlsRequired, CAPA_STARTTLS),
    ] {
        let (out, evs) = run(tls, b"", &[]);
        assert_eq!(out.as_bytes(), GREETING);
        assert!(evs.is_empty());
        let (out, evs) = run(tls, b"CAPA\r\ncapa\n", &[]);
        assert_eq!(out, text(&[GREETING, capa, capa]));
        assert!(evs.is_empty());
    }
}

#[test]
fn quit() {
    let (out, evs) = run(LocalTls::Active, b"QUIT\r\nCAPA\r\n", &[]);
    assert_eq!(out, text(&[GREETING, b"+OK Logging out\r\n"]));
    assert_eq!(evs, [Ev::Close]);
}

#[test]
fn user_pass_then_done_with_leftover() {
    let (out, evs) = run(
        LocalTls::Active,
        b"USER alice\r\nPASS correct horse  \r\nSTAT\r\nRETR 1\r\nLI",
        &[],
    );
    assert_eq!(
        out,
        text(&[GREETING, b"+OK Send PASS\r\n+OK Logged in\r\n"])
    );
    assert_eq!(
        evs,
        [
            login("alice", "correct horse  "),
            Ev::Done(b"STAT\r\nRETR 1\r\nLI".to_vec())
        ]
    );
}

/// USER/PASS split at every position into two reads, and fed byte by byte: the
/// transcript never changes.
#[test]
fn user_pass_split_everywhere() {
    let input: &[u8] = b"CAPA\r\nuser bob\r\npass s3 cr\xc3\xa9t\r\nSTAT\r\n";
    let expected_out = text(&[GREETING, CAPA_PLAIN, b"+OK Send PASS\r\n+OK Logged in\r\n"]);
    let expected_evs = [login("bob", "s3 cr\u{e9}t"), Ev::Done(b"STAT\r\n".to_vec())];
    for (cut, chunks) in testing::two_reads(&[], input, &[]) {
        let mut m = Pop3Downstream::new(LocalTls::Active, Limits::default());
        let (out, evs) = drive(&mut m, &chunks, &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            expected_out,
            "cut at {cut}"
        );
        assert_eq!(evs, expected_evs, "cut at {cut}");
    }
    let mut m = Pop3Downstream::new(LocalTls::Active, Limits::default());
    let (out, evs) = drive(&mut m, &testing::bytewise(input), &[]);
    assert_eq!(String::from_utf8(out).unwrap(), expected_out);
    assert_eq!(evs, expected_evs);
}

#[test]
fn pass_needs_user_right_before() {
    let (out, evs) = run(
        LocalTls::Active,
        b"PASS x\r\nUSER a\r\nCAPA\r\nPASS y\r\nUSER a\r\nUSER b\r\nPASS z\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        b"-ERR Send USER first\r\n",
        b"+OK Send PASS\r\n",
        CAPA_PLAIN,
        b"-ERR Send USER first\r\n",
        b"+OK Send PASS\r\n+OK Send PASS\r\n",
        b"+OK Logged in\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [login("b", "z"), Ev::Done(vec![])]);
}

#[test]
fn failed_login_forgets_the_user() {
    let (out, evs) = run(
        LocalTls::Active,
        b"USER a\r\nPASS x\r\nPASS y\r\n",
        &[Verdict::Reject(LoginRejection::BadCredentials)],
    );
    let expected = text(&[
        GREETING,
        b"+OK Send PASS\r\n-ERR [AUTH] Authentication failed\r\n",
        b"-ERR Send USER first\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [login("a", "x")]);
}

#[test]
fn auth_plain_variants() {
    // initial response, with an authzid
    let (out, evs) = run(
        LocalTls::Active,
        b"AUTH PLAIN YWRtaW4AYWxpY2UAc2VjcmV0\r\n",
        &[],
    );
    assert_eq!(out, text(&[GREETING, b"+OK Logged in\r\n"]));
    assert_eq!(
        evs[0],
        Ev::Login(Some("admin".into()), "alice".into(), "secret".into())
    );
    // continuation, lower case
    let (out, evs) = run(
        LocalTls::Active,
        b"auth plain\r\nAGFsaWNlAHNlY3JldA==\r\nSTAT\r\n",
        &[],
    );
    assert_eq!(out, text(&[GREETING, b"+ \r\n+OK Logged in\r\n"]));
    assert_eq!(
        evs,
        [login("alice", "secret"), Ev::Done(b"STAT\r\n".to_vec())]
    );
    // list, cancel, empty IR, bad base64 (both forms), bad PLAIN; then a good one
    let (out, evs) = run_limits(
        LocalTls::Active,
        lenient(),
        b"AUTH\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN =\r\nAUTH PLAIN\r\n!!\r\nAUTH PLAIN %\r\n\
          AUTH PLAIN\r\nYWxpY2U=\r\nAUTH PLAIN AGEAYg==\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        b"+OK\r\nPLAIN\r\n.\r\n",
        b"+ \r\n-ERR Authentication cancelled\r\n",
        b"-ERR Invalid SASL PLAIN response: malformed PLAIN message\r\n",
        b"+ \r\n-ERR Invalid SASL PLAIN response: invalid base64\r\n",
        b"-ERR Invalid arguments\r\n",
        b"+ \r\n-ERR Invalid SASL PLAIN response: malformed PLAIN message\r\n",
        b"+OK Logged in\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [login("a", "b"), Ev::Done(vec![])]);
}

#[test]
fn other_mechanisms_and_apop_are_refused() {
    // A client's own XOAUTH2/OAUTHBEARER is never forwarded: no Login event.
    let (out, evs) = run(
        LocalTls::Active,
        b"AUTH XOAUTH2 dXNlcj1hAWF1dGg9QmVhcmVyIHQBAQ==\r\nAUTH OAUTHBEARER\r\n\
          AUTH CRAM-MD5\r\nAPOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        b"-ERR Unsupported authentication mechanism\r\n",
        b"-ERR Unsupported authentication mechanism\r\n",
        b"-ERR Unsupported authentication mechanism\r\n",
        b"-ERR APOP not supported; use USER/PASS or AUTH PLAIN\r\n",
    ]);
    assert_eq!(out, expected);
    assert!(evs.is_empty());
}

#[test]
fn stls_required_flow() {
    let mut m = Pop3Downstream::new(LocalTls::StartTlsRequired, lenient());
    let (out, evs) = drive(
        &mut m,
        &[
            b"CAPA\r\nUSER u\r\nPASS p\r\nAUTH PLAIN AGEAYg==\r\nAUTH\r\nAPOP a b\r\n",
            b"STLS\r\n",
            b"CAPA\r\nSTLS\r\nUSER u\r\nPASS p\r\n",
        ],
        &[],
    );
    let expected = text(&[
        GREETING,
        CAPA_STARTTLS,
        STLS_REQUIRED,
        STLS_REQUIRED,
        STLS_REQUIRED,
        STLS_REQUIRED,
        b"-ERR APOP not supported; use USER/PASS or AUTH PLAIN\r\n",
        b"+OK Begin TLS negotiation\r\n",
        // after the handshake: no new greeting, login allowed, no STLS
        CAPA_PLAIN,
        b"-ERR TLS is already active\r\n",
        b"+OK Send PASS\r\n+OK Logged in\r\n",
    ]);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(evs, [Ev::StartTls, login("u", "p"), Ev::Done(vec![])]);
}

#[test]
fn after_stls_pass_needs_a_user_sent_over_tls() {
    let mut m = Pop3Downstream::new(LocalTls::StartTlsRequired, Limits::default());
    let (out, evs) = drive(&mut m, &[b"STLS\r\n", b"PASS p\r\n"], &[]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        text(&[
            GREETING,
            b"+OK Begin TLS negotiation\r\n-ERR Send USER first\r\n"
        ])
    );
    assert_eq!(evs, [Ev::StartTls]);
}

#[test]
fn stls_pipelining_is_refused() {
    // Pipelined in the same read: nothing after STLS runs, not even its +OK.
    let (out, evs) = run(LocalTls::StartTlsRequired, b"STLS\r\nUSER u\r\n", &[]);
    assert_eq!(out.as_bytes(), GREETING);
    assert_eq!(evs, [Ev::Error(Pop3Error::StartTlsPipelining)]);
    // Even a single byte counts.
    let (_, evs) = run(LocalTls::StartTlsRequired, b"STLS\r\n\n", &[]);
    assert_eq!(evs, [Ev::Error(Pop3Error::StartTlsPipelining)]);
    // Bytes arriving after the +OK but before tls_established() are refused too.
    let mut m = Pop3Downstream::new(LocalTls::StartTlsRequired, Limits::default());
    testing::feed_until_starttls(&mut m, b"STLS\r\n", 2);
    m.feed(b"USER u\r\n");
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(Pop3Error::StartTlsPipelining))
    ));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Close))));
}

#[test]
fn stls_not_offered() {
    let (out, _) = run(LocalTls::None, b"STLS\r\n", &[]);
    assert_eq!(out, text(&[GREETING, b"-ERR STLS is not available\r\n"]));
}

#[test]
fn misuse_is_reported_not_panicked() {
    let mut m = Pop3Downstream::new(LocalTls::Active, Limits::default());
    m.accept(None); // nothing pending: ignored
    m.reject(LoginRejection::BadCredentials);
    m.tls_established();
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(Pop3Error::Misuse(_)))
    ));
    let mut m = Pop3Downstream::new(LocalTls::Active, Limits::default());
    m.feed(b"USER u\r\nPASS p\r\n");
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Ok(DownstreamEvent::Login(_))));
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(Pop3Error::Misuse(_)))
    ));
    m.accept(None);
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Ok(DownstreamEvent::Done { .. })));
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(Pop3Error::Misuse(_)))
    ));
}

#[test]
fn debug_output_has_no_password() {
    for input in [
        &b"USER alice\r\nPASS hunter2\r\n"[..],
        b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n",
    ] {
        let mut m = Pop3Downstream::new(LocalTls::Active, Limits::default());
        testing::assert_secrets_hidden(&mut m, input, &["hunter2", "AGFsaWNlAGh1bnRlcjI"]);
    }
}

impl testing::Buffered for Pop3Downstream {
    fn input(&self) -> &crate::proto::line::InputBuffer {
        &self.buf
    }
}
