//! Limits and refusals of the downstream machine (byte-exact transcripts), and the
//! properties that must hold for any input.

use super::tests::*;
use super::*;
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
    let token = prop_oneof![
        Just(b"USER ".to_vec()),
        Just(b"PASS ".to_vec()),
        Just(b"AUTH ".to_vec()),
        Just(b"PLAIN ".to_vec()),
        Just(b"XOAUTH2 ".to_vec()),
        Just(b"STLS".to_vec()),
        Just(b"CAPA".to_vec()),
        Just(b"QUIT".to_vec()),
        Just(b"APOP ".to_vec()),
        Just(b"AGEAYg==".to_vec()),
        Just(b"=".to_vec()),
        Just(b"*".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No input makes the machine panic, loop, write unbounded lines, or let a login
    /// through before a required STLS.
    #[test]
    fn arbitrary_input_is_handled(input in soup(), chunk in 1usize..20, tls in 0u8..3) {
        let tls = [LocalTls::None, LocalTls::StartTlsRequired, LocalTls::Active][tls as usize];
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
            let login = evs.iter().position(|e| matches!(e, Ev::Login(..)));
            let tls = evs.iter().position(|e| *e == Ev::StartTls);
            prop_assert!(login.is_none() || tls < login);
        }
    }
}

/// Commands a client might send before login (no QUIT, no STLS).
fn client_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"CAPA\r\n".to_vec()),
        Just(b"NOOP\r\n".to_vec()),
        Just(b"USER u\r\n".to_vec()),
        Just(b"PASS p w\r\n".to_vec()),
        Just(b"AUTH\r\n".to_vec()),
        Just(b"AUTH PLAIN\r\nAHUAcA==\r\n".to_vec()),
        Just(b"AUTH PLAIN\r\n*\r\n".to_vec()),
        Just(b"APOP a b\r\n".to_vec()),
        Just(b"garbage\n".to_vec()),
    ]
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
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([input.len()]) {
            chunks.push(&input[prev..c]);
            prev = c;
        }
        let mut m = Pop3Downstream::new(LocalTls::Active, limits);
        let (out, evs) = drive(&mut m, &chunks, &rejects);
        prop_assert_eq!(String::from_utf8(out).unwrap(), whole_out);
        prop_assert_eq!(evs, whole_evs);
    }
}
