//! Limits and refusals of the downstream machine (byte-exact transcripts), and the
//! properties that must hold for any input.

use super::tests::*;
use super::*;
use crate::proto::testing;
use proptest::prelude::*;

#[test]
fn rejections_and_failure_limit() {
    let input = b"USER u\r\nPASS p1\r\nAUTH PLAIN AHUAcDI=\r\nUSER u\r\nPASS p3\r\nCAPA\r\n";
    let verdicts = [
        Verdict::Reject(LoginRejection::NeedsReauthorization(
            "Re-consent at\r\nhttps://x".into(),
        )),
        Verdict::Reject(LoginRejection::Unavailable("Try later".into())),
        Verdict::Reject(LoginRejection::BadCredentials),
    ];
    let (out, evs) = run(LocalTls::Active, input, &verdicts);
    let expected = text(&[
        GREETING,
        b"+OK Send PASS\r\n-ERR [AUTH] Re-consent at  https://x\r\n",
        b"-ERR [SYS/TEMP] Try later\r\n",
        b"+OK Send PASS\r\n-ERR [AUTH] Authentication failed\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(
        evs,
        [
            login("u", "p1"),
            login("u", "p2"),
            login("u", "p3"),
            Ev::Close
        ]
    );
}

#[test]
fn empty_rejection_messages() {
    let verdicts = [
        Verdict::Reject(LoginRejection::NeedsReauthorization("\r\n".into())),
        Verdict::Reject(LoginRejection::Unavailable(String::new())),
    ];
    let (out, _) = run(
        LocalTls::Active,
        b"USER u\r\nPASS a\r\nUSER u\r\nPASS b\r\n",
        &verdicts,
    );
    let expected = text(&[
        GREETING,
        b"+OK Send PASS\r\n-ERR [AUTH] Authentication failed\r\n",
        b"+OK Send PASS\r\n-ERR [SYS/TEMP] Authentication failed\r\n",
    ]);
    assert_eq!(out, expected);
}

#[test]
fn refusals_before_login_and_error_limit() {
    let (out, evs) = run(
        LocalTls::Active,
        b"STAT\r\nnoop\r\nFROB x\r\n USER a\r\n\r\nUSER\r\nCAPA\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        b"-ERR Log in first\r\n",
        b"-ERR Log in first\r\n",
        b"-ERR Unknown command\r\n",
        b"-ERR Syntax error\r\n",
        // the fifth refusal ends the connection
        b"-ERR Too many invalid commands\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [Ev::Close]);
    // every kind of refusal counts, including the ones before a required STLS
    let limits = Limits {
        max_errors: 3,
        ..Limits::default()
    };
    let (out, evs) = run_limits(
        LocalTls::StartTlsRequired,
        limits,
        b"USER a\r\nAUTH X\r\nAPOP a b\r\nCAPA\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        STLS_REQUIRED,
        STLS_REQUIRED,
        b"-ERR Too many invalid commands\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [Ev::Close]);
}

#[test]
fn non_utf8_credentials() {
    let (out, evs) = run(
        LocalTls::Active,
        b"USER \xff\r\nUSER u\r\nPASS \xff\r\nAUTH PLAIN AHUA/w==\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        b"-ERR User name must be UTF-8\r\n",
        b"+OK Send PASS\r\n-ERR Password must be UTF-8\r\n",
        b"-ERR Invalid SASL PLAIN response: SASL message is not valid UTF-8\r\n",
    ]);
    assert_eq!(out, expected);
    assert!(evs.is_empty());
}

fn small() -> Limits {
    Limits {
        max_line: 40,
        max_sasl: 16,
        ..Limits::default()
    }
}

#[test]
fn line_too_long_closes() {
    let mut input = b"CAPA\r\n".to_vec();
    input.extend([b'x'; 100]);
    let (out, evs) = run_limits(LocalTls::Active, small(), &input, &[]);
    assert_eq!(
        out,
        text(&[GREETING, CAPA_PLAIN, b"-ERR Line too long\r\n"])
    );
    assert_eq!(evs, [Ev::Close]);
    // exactly max_line bytes with the line end is fine
    let mut input = b"USER ".to_vec();
    input.extend([b'u'; 33]);
    input.extend(b"\r\n");
    assert_eq!(input.len(), 40);
    let (out, _) = run_limits(LocalTls::Active, small(), &input, &[]);
    assert_eq!(out, text(&[GREETING, b"+OK Send PASS\r\n"]));
}

#[test]
fn sasl_response_too_long() {
    let (out, evs) = run_limits(
        LocalTls::Active,
        small(),
        b"AUTH PLAIN\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\r\nCAPA\r\n",
        &[],
    );
    assert_eq!(
        out,
        text(&[
            GREETING,
            b"+ \r\n-ERR SASL response too long\r\n",
            CAPA_PLAIN
        ])
    );
    assert!(evs.is_empty());
    // as an initial response
    let (out, _) = run_limits(
        LocalTls::Active,
        small(),
        b"AUTH PLAIN AAAAAAAAAAAAAAAAA\r\n",
        &[],
    );
    assert_eq!(out, text(&[GREETING, b"-ERR SASL response too long\r\n"]));
}

/// Grammar pieces and noise, for "anything goes" inputs.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    testing::soup(&[
        b"USER ",
        b"PASS ",
        b"AUTH ",
        b"PLAIN ",
        b"XOAUTH2 ",
        b"STLS",
        b"CAPA",
        b"QUIT",
        b"APOP ",
        b"AGEAYg==",
        b"=",
        b"*",
        b"\r\n",
        b"\n",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No input makes the machine panic, loop, write unbounded lines, or let a login
    /// through before a required STLS.
    #[test]
    fn arbitrary_input_is_handled(input in soup(), chunk in 1usize..20, tls in 0u8..3) {
        let tls = testing::local_tls(tls);
        let limits = Limits { max_line: 64, max_sasl: 32, ..Limits::default() };
        let mut m = Pop3Downstream::new(tls, limits);
        let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
        let verdicts = vec![Verdict::Reject(LoginRejection::BadCredentials); 2];
        let (out, evs) = drive(&mut m, &chunks, &verdicts);
        prop_assert!(out.is_empty() || out.ends_with(b"\r\n"));
        for line in out.split(|&b| b == b'\n') {
            prop_assert!(line.len() <= 100);
        }
        if tls == LocalTls::StartTlsRequired {
            prop_assert!(testing::no_login_before_starttls(&evs));
        }
    }
}

/// Commands a client might send before login (no QUIT, no STLS).
fn client_line() -> impl Strategy<Value = Vec<u8>> {
    testing::one_of(&[
        b"CAPA\r\n",
        b"NOOP\r\n",
        b"USER u\r\n",
        b"PASS p w\r\n",
        b"AUTH\r\n",
        b"AUTH PLAIN\r\nAHUAcA==\r\n",
        b"AUTH PLAIN\r\n*\r\n",
        b"APOP a b\r\n",
        b"garbage\n",
    ])
}

proptest! {
    /// However the bytes are split into reads, the transcript is the same.
    #[test]
    fn chunking_invariance(lines in proptest::collection::vec(client_line(), 1..8),
                           cuts in proptest::collection::vec(0usize..200, 0..8)) {
        let input = lines.concat();
        let limits = lenient();
        let rejects = vec![Verdict::Reject(LoginRejection::BadCredentials); 10];
        let (whole_out, whole_evs) = run_limits(LocalTls::Active, limits, &input, &rejects);
        let mut m = Pop3Downstream::new(LocalTls::Active, limits);
        let (out, evs) = drive(&mut m, &testing::cut_at(&input, cuts), &rejects);
        prop_assert_eq!(String::from_utf8(out).unwrap(), whole_out);
        prop_assert_eq!(evs, whole_evs);
    }
}

/// Commands pipelined behind USER/PASS wait for the login's outcome: nothing after
/// PASS is answered before the verdict; after a rejection the machine answers them
/// itself (no `Done`: nothing reaches the upstream), after an acceptance they are the
/// leftover.
#[test]
fn pipelined_commands_wait_for_the_login() {
    let input = b"USER u\r\nPASS p\r\nSTAT\r\nRETR 1\r\n";
    for tls in [LocalTls::None, LocalTls::Active] {
        let mut m = Pop3Downstream::new(tls, Limits::default());
        let before = testing::written_before_login(&mut m, input);
        assert_eq!(before, text(&[GREETING, b"+OK Send PASS\r\n"]).as_bytes());
        let (out, evs) =
            testing::after_verdict(&mut m, Verdict::Reject(LoginRejection::BadCredentials));
        let expected = "-ERR [AUTH] Authentication failed\r\n-ERR Log in first\r\n";
        assert_eq!(out, format!("{expected}-ERR Log in first\r\n"));
        assert!(evs.is_empty(), "{evs:?}");

        let mut m = Pop3Downstream::new(tls, Limits::default());
        testing::written_before_login(&mut m, input);
        let (out, evs) = testing::after_verdict(&mut m, Verdict::Accept(ACCEPT_CAPS));
        assert_eq!(out, "+OK Logged in\r\n");
        assert_eq!(evs, [Ev::Done(b"STAT\r\nRETR 1\r\n".to_vec())]);
    }
    // the same with AUTH PLAIN and its initial response
    let mut m = Pop3Downstream::new(LocalTls::Active, Limits::default());
    testing::written_before_login(&mut m, b"AUTH PLAIN AHUAcA==\r\nSTAT\r\n");
    let (out, evs) =
        testing::after_verdict(&mut m, Verdict::Reject(LoginRejection::BadCredentials));
    assert_eq!(
        out,
        "-ERR [AUTH] Authentication failed\r\n-ERR Log in first\r\n"
    );
    assert!(evs.is_empty(), "{evs:?}");
}
