//! Limits and refusals of the downstream machine (byte-exact transcripts).

use super::tests::*;
use super::*;
use crate::proto::testing;
use proptest::prelude::*;

#[test]
fn rejections_and_failure_limit() {
    let input = b"a LOGIN u p1\r\nb LOGIN u p2\r\nc LOGIN u p3\r\nd NOOP\r\n";
    let verdicts = [
        Verdict::Reject(LoginRejection::NeedsReauthorization(
            "Re-consent at\r\nhttps://x".into(),
        )),
        Verdict::Reject(LoginRejection::Unavailable("Try later".into())),
        Verdict::Reject(LoginRejection::BadCredentials),
    ];
    let (out, evs) = run(LocalTls::Active, input, &verdicts);
    let expected = text(&[
        GREETING_PLAIN,
        b"a NO [AUTHENTICATIONFAILED] Re-consent at  https://x\r\n",
        b"b NO [UNAVAILABLE] Try later\r\n",
        b"c NO [AUTHENTICATIONFAILED] Authentication failed.\r\n* BYE Too many failed logins\r\n",
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
fn refusals_before_login() {
    let (out, evs) = run(
        LocalTls::Active,
        b"a SELECT INBOX\r\nb FROB\r\n* LOGIN a b\r\n\r\nc LOGIN\r\n",
        &[],
    );
    let expected = text(&[
        GREETING_PLAIN,
        b"a BAD Log in first\r\n",
        b"b BAD Unknown command\r\n",
        b"* BAD Syntax error\r\n",
        b"* BAD Empty command line\r\n",
        b"c BAD Invalid arguments\r\n* BYE Too many invalid commands\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [Ev::Close]);
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
    let mut input = b"a NOOP\r\n".to_vec();
    input.extend([b'x'; 100]);
    let (out, evs) = run_limits(LocalTls::Active, small(), &input, &[]);
    assert_eq!(
        out,
        text(&[
            GREETING_PLAIN,
            b"a OK NOOP completed\r\n* BAD Line too long\r\n"
        ])
    );
    assert_eq!(evs, [Ev::Close]);
}

#[test]
fn literal_limits() {
    // synchronizing: BAD instead of "+", and the next line is a new command
    let (out, evs) = run_limits(LocalTls::Active, small(), b"a LOGIN {9}\r\nb NOOP\r\n", &[]);
    assert_eq!(
        out,
        text(&[
            GREETING_PLAIN,
            b"a BAD Literal too large\r\nb OK NOOP completed\r\n"
        ])
    );
    assert!(evs.is_empty());
    // non-synchronizing: the client sends the data anyway, so close
    let (out, evs) = run_limits(
        LocalTls::Active,
        small(),
        b"a LOGIN {9+}\r\nb NOOP\r\n\r\n",
        &[],
    );
    assert_eq!(
        out,
        text(&[
            GREETING_PLAIN,
            b"a BAD Literal too large\r\n* BYE Literal too large\r\n"
        ])
    );
    assert_eq!(evs, [Ev::Close]);
}

#[test]
fn refused_commands_never_run_their_literals() {
    // A literal of a refused command is skipped, even when it looks like commands.
    let (out, evs) = run(
        LocalTls::Active,
        b"a SELECT {10+}\r\nb LOGOUT\r\n {2+}\r\nxx\r\nc SELECT {8}\r\nd NOOP\r\n",
        &[],
    );
    let expected = text(&[
        GREETING_PLAIN,
        b"a BAD Log in first\r\nc BAD Log in first\r\nd OK NOOP completed\r\n",
    ]);
    assert_eq!(out, expected);
    assert!(evs.is_empty());
    // a LOGIN refused for privacy reasons gets no "+"; its {n+} literal is skipped
    let (out, _) = run(
        LocalTls::StartTlsRequired,
        b"a LOGIN {3+}\r\nb N u\r\nc NOOP\r\n",
        &[],
    );
    let expected = text(&[
        GREETING_STARTTLS,
        b"a NO [PRIVACYREQUIRED] Use STARTTLS first\r\nc OK NOOP completed\r\n",
    ]);
    assert_eq!(out, expected);
    // a third literal in LOGIN is a syntax error, announced before its data
    let (out, _) = run(LocalTls::Active, b"a LOGIN {1}\r\nx {1}\r\ny {1}\r\n", &[]);
    let expected = text(&[
        GREETING_PLAIN,
        b"+ Ready for literal data\r\n+ Ready for literal data\r\n",
        b"a BAD Invalid arguments\r\n",
    ]);
    assert_eq!(out, expected);
}

#[test]
fn sasl_response_too_long() {
    let (out, evs) = run_limits(
        LocalTls::Active,
        small(),
        b"a AUTHENTICATE PLAIN\r\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\r\nb NOOP\r\n",
        &[],
    );
    assert_eq!(
        out,
        text(&[
            GREETING_PLAIN,
            b"+ \r\na BAD SASL response too long\r\nb OK NOOP completed\r\n"
        ])
    );
    assert!(evs.is_empty());
    // as an initial response
    let (out, _) = run_limits(
        LocalTls::Active,
        small(),
        b"a AUTHENTICATE PLAIN AAAAAAAAAAAAAAAAA\r\n",
        &[],
    );
    assert_eq!(
        out,
        text(&[GREETING_PLAIN, b"a BAD SASL response too long\r\n"])
    );
}

/// Grammar pieces and noise, for "anything goes" inputs.
fn soup() -> impl Strategy<Value = Vec<u8>> {
    testing::soup(&[
        b"a ",
        b"LOGIN ",
        b"AUTHENTICATE PLAIN ",
        b"STARTTLS",
        b"CAPABILITY",
        b"LOGOUT",
        b"{3}\r\n",
        b"{3+}\r\n",
        b"{70+}\r\n",
        b"\"q\\\"",
        b"AGEAYg==",
        b"*",
        b"\r\n",
        b"\n",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No input makes the machine panic, loop, write unbounded lines, or let a login
    /// through before a required STARTTLS.
    #[test]
    fn arbitrary_input_is_handled(input in soup(), chunk in 1usize..20, tls in 0u8..3) {
        let tls = testing::local_tls(tls);
        let limits = Limits { max_line: 64, max_literal: 16, max_sasl: 32, ..Limits::default() };
        let mut m = ImapDownstream::new(tls, limits);
        let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
        let verdicts = vec![Verdict::Reject(LoginRejection::BadCredentials); 2];
        let (out, evs) = drive(&mut m, &chunks, &verdicts);
        for line in out.split(|&b| b == b'\n') {
            prop_assert!(line.len() <= limits.max_line + 100);
        }
        if tls == LocalTls::StartTlsRequired {
            prop_assert!(testing::no_login_before_starttls(&evs));
        }
    }
}

/// Commands pipelined behind a LOGIN wait for its outcome: nothing is answered before
/// the verdict; after a rejection the machine answers them itself (they never reach
/// the upstream: no `Done`), after an acceptance they are the leftover.
#[test]
fn pipelined_commands_wait_for_the_login() {
    let input = b"A1 LOGIN u p\r\nA2 NOOP\r\nA3 SELECT INBOX\r\n";
    for tls in [LocalTls::None, LocalTls::Active] {
        let mut m = ImapDownstream::new(tls, Limits::default());
        assert_eq!(testing::written_before_login(&mut m, input), GREETING_PLAIN);
        let (out, evs) =
            testing::after_verdict(&mut m, Verdict::Reject(LoginRejection::BadCredentials));
        let expected = text(&[
            b"A1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
            b"A2 OK NOOP completed\r\nA3 BAD Log in first\r\n",
        ]);
        assert_eq!(out, expected);
        assert!(evs.is_empty(), "{evs:?}");

        let mut m = ImapDownstream::new(tls, Limits::default());
        testing::written_before_login(&mut m, input);
        let (out, evs) = testing::after_verdict(&mut m, Verdict::Accept(None));
        assert_eq!(out, "A1 OK Logged in\r\n");
        assert_eq!(evs, [Ev::Done(b"A2 NOOP\r\nA3 SELECT INBOX\r\n".to_vec())]);
    }
}

/// A LOGIN literal over the limit gets a BAD and no `+`; what follows is read as new
/// commands (a client that waits for `+` sends no literal data). A non-synchronizing
/// one, whose data comes anyway, closes the connection before any of it is read.
#[test]
fn over_limit_login_literal_is_never_read() {
    let (out, evs) = run(LocalTls::Active, b"A1 LOGIN {5000}\r\nA2 NOOP\r\n", &[]);
    assert_eq!(
        out,
        text(&[
            GREETING_PLAIN,
            b"A1 BAD Literal too large\r\nA2 OK NOOP completed\r\n"
        ])
    );
    assert!(evs.is_empty());
    let mut input = b"A1 LOGIN {5000+}\r\n".to_vec();
    input.extend(b"A2 LOGIN u p\r\nA3 NOOP\r\n".repeat(200));
    let (out, evs) = run(LocalTls::Active, &input, &[]);
    assert_eq!(
        out,
        text(&[
            GREETING_PLAIN,
            b"A1 BAD Literal too large\r\n* BYE Literal too large\r\n"
        ])
    );
    assert_eq!(evs, [Ev::Close]);
    // a literal within the limit, of a refused command, is skipped even when it holds
    // a login
    let input = b"A1 SELECT {14+}\r\nA2 LOGIN u p\r\n\r\nA3 NOOP\r\n";
    let (out, evs) = run(LocalTls::Active, input, &[]);
    let expected = text(&[
        GREETING_PLAIN,
        b"A1 BAD Log in first\r\nA3 OK NOOP completed\r\n",
    ]);
    assert_eq!(out, expected);
    assert!(evs.is_empty(), "{evs:?}");
}
