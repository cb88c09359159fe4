//! Byte-exact transcripts of the downstream machine.

use super::*;
use proptest::prelude::*;

use crate::proto::testing::{self, cut_at, one_of};
pub(super) use crate::proto::testing::{Verdict, login, text};

pub(super) const GREETING_PLAIN: &[u8] =
    b"* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN] oauth-mail-proxy ready\r\n";
pub(super) const GREETING_STARTTLS: &[u8] =
    b"* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID STARTTLS LOGINDISABLED] oauth-mail-proxy ready\r\n";

pub(super) type Ev = testing::Ev<ImapError>;

/// The transcript driver; logins are accepted without capabilities by default.
pub(super) fn drive(
    m: &mut ImapDownstream,
    chunks: &[&[u8]],
    verdicts: &[Verdict],
) -> (Vec<u8>, Vec<Ev>) {
    testing::drive_downstream(m, chunks, verdicts, None)
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
    let mut m = ImapDownstream::new(tls, limits);
    let (out, evs) = drive(&mut m, &[input], v);
    (String::from_utf8(out).unwrap(), evs)
}

#[test]
fn greetings() {
    for (tls, greeting) in [
        (LocalTls::None, GREETING_PLAIN),
        (LocalTls::Active, GREETING_PLAIN),
        (LocalTls::StartTlsRequired, GREETING_STARTTLS),
    ] {
        let (out, evs) = run(tls, b"", &[]);
        assert_eq!(out.as_bytes(), greeting);
        assert!(evs.is_empty());
    }
}

#[test]
fn capability_noop_id_logout() {
    let (out, evs) = run(
        LocalTls::Active,
        b"a CAPABILITY\r\nb noop\r\nc ID (\"name\" \"mutt\")\r\nd LOGOUT\r\ne NOOP\r\n",
        &[],
    );
    let expected = text(&[
        GREETING_PLAIN,
        b"* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN\r\na OK Capability completed\r\n",
        b"b OK NOOP completed\r\n",
        b"* ID NIL\r\nc OK ID completed\r\n",
        b"* BYE Logging out\r\nd OK Logout completed\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [Ev::Close]);
}

#[test]
fn login_atoms_then_done_with_leftover() {
    let (out, evs) = run(
        LocalTls::Active,
        b"a1 LOGIN alice secret\r\na2 SELECT INBOX\r\na3 FET",
        &[Verdict::Accept(Some("IMAP4rev1 IDLE\r\nX"))],
    );
    assert_eq!(
        out,
        text(&[
            GREETING_PLAIN,
            b"a1 OK [CAPABILITY IMAP4rev1 IDLE X] Logged in\r\n"
        ])
    );
    assert_eq!(
        evs,
        [
            login("alice", "secret"),
            Ev::Done(b"a2 SELECT INBOX\r\na3 FET".to_vec())
        ]
    );
}

#[test]
fn login_quoted_and_literals_mixed() {
    let input = b"t LOGIN \"al\\\"ice\" {8+}\r\npa\"s\r\n s\r\n";
    let (out, evs) = run(LocalTls::None, input, &[]);
    assert_eq!(out, text(&[GREETING_PLAIN, b"t OK Logged in\r\n"]));
    assert_eq!(evs, [login("al\"ice", "pa\"s\r\n s"), Ev::Done(vec![])]);
}

/// The LOGIN-with-literals case, split at every position into two reads and also fed
/// byte by byte: the transcript never changes.
#[test]
fn login_literals_split_everywhere() {
    let input: &[u8] = b"a LOGIN {5}\r\nalice {7}\r\nse\r\ncr7\r\nb NOOP\r\n";
    let expected_out = text(&[
        GREETING_PLAIN,
        b"+ Ready for literal data\r\n+ Ready for literal data\r\na OK Logged in\r\n",
    ]);
    let expected_evs = [
        login("alice", "se\r\ncr7"),
        Ev::Done(b"b NOOP\r\n".to_vec()),
    ];
    for (cut, chunks) in testing::two_reads(&[], input, &[]) {
        let mut m = ImapDownstream::new(LocalTls::Active, Limits::default());
        let (out, evs) = drive(&mut m, &chunks, &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            expected_out,
            "cut at {cut}"
        );
        assert_eq!(evs, expected_evs, "cut at {cut}");
    }
    let mut m = ImapDownstream::new(LocalTls::Active, Limits::default());
    let (out, evs) = drive(&mut m, &testing::bytewise(input), &[]);
    assert_eq!(String::from_utf8(out).unwrap(), expected_out);
    assert_eq!(evs, expected_evs);
}

#[test]
fn authenticate_plain_variants() {
    // SASL-IR, with an authzid
    let (out, evs) = run(
        LocalTls::Active,
        b"a AUTHENTICATE PLAIN YWRtaW4AYWxpY2UAc2VjcmV0\r\n",
        &[],
    );
    assert_eq!(out, text(&[GREETING_PLAIN, b"a OK Logged in\r\n"]));
    assert_eq!(
        evs[0],
        Ev::Login(Some("admin".into()), "alice".into(), "secret".into())
    );
    // continuation
    let (out, evs) = run(
        LocalTls::Active,
        b"a authenticate plain\r\nAGFsaWNlAHNlY3JldA==\r\n",
        &[],
    );
    assert_eq!(out, text(&[GREETING_PLAIN, b"+ \r\na OK Logged in\r\n"]));
    assert_eq!(evs[0], login("alice", "secret"));
    // cancel, empty IR, bad base64, unknown mechanism; then a good one
    let (out, evs) = run(
        LocalTls::Active,
        b"a AUTHENTICATE PLAIN\r\n*\r\nb AUTHENTICATE PLAIN =\r\nc AUTHENTICATE PLAIN\r\n!!\r\n\
          d AUTHENTICATE CRAM-MD5\r\ne AUTHENTICATE PLAIN AGEAYg==\r\n",
        &[],
    );
    let expected = text(&[
        GREETING_PLAIN,
        b"+ \r\na BAD Authentication cancelled\r\n",
        b"b BAD Invalid SASL PLAIN response: malformed PLAIN message\r\n",
        b"+ \r\nc BAD Invalid SASL PLAIN response: invalid base64\r\n",
        b"d NO Unsupported authentication mechanism\r\n",
        b"e OK Logged in\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [login("a", "b"), Ev::Done(vec![])]);
}

#[test]
fn starttls_required_flow() {
    let mut m = ImapDownstream::new(LocalTls::StartTlsRequired, Limits::default());
    let (out, evs) = drive(
        &mut m,
        &[
            b"a CAPABILITY\r\nb LOGIN u p\r\nc LOGIN {1}\r\nd AUTHENTICATE PLAIN\r\n",
            b"e STARTTLS\r\n",
            b"f CAPABILITY\r\ng STARTTLS\r\nh LOGIN u p\r\n",
        ],
        &[],
    );
    let expected = text(&[
        GREETING_STARTTLS,
        b"* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID STARTTLS LOGINDISABLED\r\na OK Capability completed\r\n",
        b"b NO [PRIVACYREQUIRED] Use STARTTLS first\r\n",
        b"c NO [PRIVACYREQUIRED] Use STARTTLS first\r\n",
        b"d NO [PRIVACYREQUIRED] Use STARTTLS first\r\n",
        b"e OK Begin TLS negotiation now\r\n",
        // after the handshake: no new greeting, login allowed, no STARTTLS
        b"* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN\r\nf OK Capability completed\r\n",
        b"g BAD TLS is already active\r\n",
        b"h OK Logged in\r\n",
    ]);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(evs, [Ev::StartTls, login("u", "p"), Ev::Done(vec![])]);
}

#[test]
fn starttls_pipelining_is_refused() {
    // Pipelined in the same read: nothing after STARTTLS runs, not even its OK.
    let (out, evs) = run(
        LocalTls::StartTlsRequired,
        b"a STARTTLS\r\nb LOGIN u p\r\n",
        &[],
    );
    assert_eq!(out.as_bytes(), GREETING_STARTTLS);
    assert_eq!(evs, [Ev::Error(ImapError::StartTlsPipelining)]);
    // Even a single byte counts.
    let (_, evs) = run(LocalTls::StartTlsRequired, b"a STARTTLS\r\n\n", &[]);
    assert_eq!(evs, [Ev::Error(ImapError::StartTlsPipelining)]);
    // Bytes arriving after the OK but before tls_established() are refused too.
    let mut m = ImapDownstream::new(LocalTls::StartTlsRequired, Limits::default());
    testing::feed_until_starttls(&mut m, b"a STARTTLS\r\n", 2);
    m.feed(b"b LOGIN u p\r\n");
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(ImapError::StartTlsPipelining))
    ));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Close))));
}

#[test]
fn starttls_not_offered() {
    let (out, _) = run(LocalTls::None, b"a STARTTLS\r\n", &[]);
    assert_eq!(
        out,
        text(&[GREETING_PLAIN, b"a BAD STARTTLS is not available\r\n"])
    );
}

#[test]
fn misuse_is_reported_not_panicked() {
    let mut m = ImapDownstream::new(LocalTls::Active, Limits::default());
    m.accept(None); // nothing pending: ignored
    m.reject(LoginRejection::BadCredentials);
    m.feed(b"a LOGIN u p\r\n");
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Ok(DownstreamEvent::Login(_))));
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(ImapError::Misuse(_)))
    ));
    m.accept(None);
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Ok(DownstreamEvent::Done { .. })));
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(ImapError::Misuse(_)))
    ));
}

#[test]
fn debug_output_has_no_password() {
    let mut m = ImapDownstream::new(LocalTls::Active, Limits::default());
    // the greeting, then the login
    let steps = testing::assert_secrets_hidden(&mut m, b"a LOGIN alice hunter2\r\n", &["hunter2"]);
    assert_eq!(steps, 2);
}

/// Commands a client might send before login (no LOGOUT, no STARTTLS).
fn client_line() -> impl Strategy<Value = Vec<u8>> {
    one_of(&[
        b"a NOOP\r\n",
        b"b CAPABILITY\r\n",
        b"c SELECT {3+}\r\nx\r\n\r\n",
        b"d LOGIN {1}\r\nu {2+}\r\npw\r\n",
        b"e AUTHENTICATE PLAIN\r\nAHUAcA==\r\n",
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
        let mut m = ImapDownstream::new(LocalTls::Active, limits);
        let (out, evs) = drive(&mut m, &cut_at(&input, cuts), &rejects);
        prop_assert_eq!(String::from_utf8(out).unwrap(), whole_out);
        prop_assert_eq!(evs, whole_evs);
    }
}

impl testing::Buffered for ImapDownstream {
    fn input(&self) -> &crate::proto::line::InputBuffer {
        &self.buf
    }
}
