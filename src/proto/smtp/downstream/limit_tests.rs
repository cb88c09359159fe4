//! Limits and refusals of the downstream machine (byte-exact transcripts).

use super::tests::*;
use super::*;
use crate::proto::testing;
use proptest::prelude::*;

#[test]
fn rejections_and_failure_limit() {
    let input =
        b"EHLO c\r\nAUTH PLAIN AHUAcDE=\r\nAUTH PLAIN AHUAcDI=\r\nAUTH PLAIN AHUAcDM=\r\nNOOP\r\n";
    let verdicts = [
        Verdict::Reject(LoginRejection::NeedsReauthorization(
            "Re-consent at\r\n250 https://x".into(),
        )),
        Verdict::Reject(LoginRejection::Unavailable("Try later".into())),
        Verdict::Reject(LoginRejection::BadCredentials),
    ];
    let (out, evs) = run(LocalTls::Active, input, &verdicts);
    let expected = text(&[
        GREETING,
        &ehlo_auth(),
        b"535 5.7.8 Re-consent at  250 https://x\r\n",
        b"454 4.7.0 Try later\r\n",
        b"535 5.7.8 Authentication credentials invalid\r\n",
        b"421 4.7.0 Too many failed authentications\r\n",
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
    // empty messages get a default text
    let verdicts = [
        Verdict::Reject(LoginRejection::NeedsReauthorization("\r\n".into())),
        Verdict::Reject(LoginRejection::Unavailable(String::new())),
    ];
    let (out, _) = run(LocalTls::Active, input, &verdicts);
    assert!(out.ends_with(
        "535 5.7.8 Authentication credentials invalid\r\n\
         454 4.7.0 Temporary authentication failure\r\n\
         235 2.7.0 Authentication successful\r\n"
    ));
}

#[test]
fn refusals_and_error_limit() {
    let (out, evs) = run(
        LocalTls::Active,
        b"FROB\r\n\r\nEHLO\r\nSTARTTLS x\r\nAUTH\r\nNOOP\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        b"500 5.5.1 Unknown command\r\n",
        b"500 5.5.2 Syntax error\r\n",
        b"501 5.5.4 Syntax: EHLO domain\r\n",
        b"501 5.5.4 Syntax: STARTTLS\r\n",
        b"501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n",
        b"421 4.7.0 Too many invalid commands\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [Ev::Close]);
    // malformed transaction commands still get "authenticate first"
    let (out, _) = run(LocalTls::Active, b"MAIL\r\nDATA now\r\nBDAT x\r\n", &[]);
    let expected = text(&[
        GREETING,
        b"530 5.7.0 Authentication required\r\n"
            .repeat(3)
            .as_slice(),
    ]);
    assert_eq!(out, expected);
}

fn small() -> Limits {
    Limits {
        max_line: 40,
        max_literal: 8,
        max_sasl: 16,
        ..Limits::default()
    }
}

#[test]
fn line_too_long_closes() {
    let mut input = b"NOOP\r\n".to_vec();
    input.extend([b'x'; 100]);
    let (out, evs) = run_limits(LocalTls::Active, small(), &input, &[]);
    assert_eq!(
        out,
        text(&[GREETING, b"250 2.0.0 OK\r\n500 5.5.0 Line too long\r\n"])
    );
    assert_eq!(evs, [Ev::Close]);
}

#[test]
fn sasl_response_too_long() {
    // in a 334 continuation: refused, the rest of the line dropped (even across reads)
    let mut m = machine(LocalTls::Active, small());
    let (out, evs) = drive(
        &mut m,
        &[
            b"EHLO c\r\nAUTH PLAIN\r\nAAAAAAAAAAAAAAAAAAAA",
            b"AAAAAAAAAAAAAAAAAAAA",
            b"AAAAAAAAAAAAAAAAA==\r\nNOOP\r\n",
        ],
        &[],
    );
    let expected = text(&[
        GREETING,
        &ehlo_auth(),
        b"334 \r\n500 5.5.6 Authentication Exchange line is too long\r\n",
        b"250 2.0.0 OK\r\n",
    ]);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert!(evs.is_empty());
    // as an initial response
    let (out, _) = run_limits(
        LocalTls::Active,
        small(),
        b"EHLO c\r\nAUTH LOGIN AAAAAAAAAAAAAAAAAAAA\r\n",
        &[],
    );
    assert_eq!(
        out,
        text(&[
            GREETING,
            &ehlo_auth(),
            b"500 5.5.6 Authentication Exchange line is too long\r\n"
        ])
    );
}

#[test]
fn refused_bdat_chunks_are_skipped_never_run() {
    // The chunk looks like commands; it is skipped (also across reads).
    let mut m = machine(LocalTls::Active, small());
    let (out, evs) = drive(
        &mut m,
        &[b"BDAT 8 LAST\r\nQUIT", b"\r\nQU", b"NOOP\r\n"],
        &[],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        text(&[
            GREETING,
            b"530 5.7.0 Authentication required\r\n250 2.0.0 OK\r\n"
        ])
    );
    assert!(evs.is_empty());
    // larger than max_literal: close
    let (out, evs) = run_limits(LocalTls::Active, small(), b"BDAT 9\r\n123456789", &[]);
    assert_eq!(
        out,
        text(&[
            GREETING,
            b"530 5.7.0 Authentication required\r\n",
            b"421 4.7.0 Too much data before authentication\r\n"
        ])
    );
    assert_eq!(evs, [Ev::Close]);
}

/// Grammar pieces and noise, for "anything goes" inputs.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    testing::soup(&[
        b"EHLO c",
        b"HELO ",
        b"AUTH ",
        b"PLAIN ",
        b"LOGIN ",
        b"XOAUTH2 ",
        b"STARTTLS",
        b"MAIL FROM:<>",
        b"BDAT 3",
        b"BDAT 70 LAST",
        b"QUIT",
        b"AGEAYg==",
        b"dQ==",
        b"*",
        b"=",
        b"\r\n",
        b"\n",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No input makes the machine panic, loop, write unbounded or partial lines, or
    /// let a login through before a required STARTTLS.
    #[test]
    fn arbitrary_input_is_handled(input in soup(), chunk in 1usize..20, tls in 0u8..3) {
        let tls = testing::local_tls(tls);
        let limits = Limits { max_line: 64, max_literal: 16, max_sasl: 32, ..Limits::default() };
        let mut m = machine(tls, limits);
        let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
        let verdicts = vec![Verdict::Reject(LoginRejection::BadCredentials); 2];
        let (out, evs) = drive(&mut m, &chunks, &verdicts);
        prop_assert!(out.is_empty() || out.ends_with(b"\r\n"));
        for line in out.split(|&b| b == b'\n') {
            prop_assert!(line.len() <= 512);
        }
        if tls == LocalTls::StartTlsRequired {
            prop_assert!(testing::no_login_before_starttls(&evs));
        }
    }
}
