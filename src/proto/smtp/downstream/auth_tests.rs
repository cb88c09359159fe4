//! AUTH PLAIN and AUTH LOGIN transcripts of the downstream machine (byte-exact).

use super::tests::*;
use super::*;
use crate::proto::testing;

#[test]
fn auth_plain_initial_response_with_pipelined_mail() {
    // IR of "\0alice\0secret"; MAIL FROM and RCPT pipelined right behind it
    let mut m = machine(LocalTls::Active, Limits::default());
    let (out, evs) = drive(
        &mut m,
        &[
            b"EHLO client.example\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@x>\r\nRCPT",
            b" TO:<b@y>\r\n",
        ],
        &[],
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        text(&[
            GREETING,
            &ehlo_auth(),
            b"235 2.7.0 Authentication successful\r\n"
        ])
    );
    assert_eq!(
        evs,
        [
            login("alice", "secret"),
            Ev::Done(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n".to_vec())
        ]
    );
    assert_eq!(m.client_domain(), Some("client.example"));
}

#[test]
fn auth_plain_continuation_and_authzid() {
    let (out, evs) = run(
        LocalTls::None,
        b"EHLO c\r\nauth plain\r\nYWRtaW4AYWxpY2UAc2VjcmV0\r\n",
        &[],
    );
    assert_eq!(
        out,
        text(&[
            GREETING,
            &ehlo_auth(),
            b"334 \r\n235 2.7.0 Authentication successful\r\n"
        ])
    );
    // a non-empty authzid different from the user is passed on for the session to refuse
    assert_eq!(
        evs,
        [
            Ev::Login(Some("admin".into()), "alice".into(), "secret".into()),
            Ev::Done(vec![])
        ]
    );
    // `=` is an empty initial response: not a valid PLAIN message
    let (out, evs) = run(LocalTls::Active, b"EHLO c\r\nAUTH PLAIN =\r\n", &[]);
    assert_eq!(
        out,
        text(&[
            GREETING,
            &ehlo_auth(),
            b"501 5.5.2 Invalid PLAIN message\r\n"
        ])
    );
    assert!(evs.is_empty());
}

#[test]
fn auth_login_both_forms() {
    // Username: / Password: dance
    let (out, evs) = run(
        LocalTls::Active,
        b"EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        &ehlo_auth(),
        b"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [login("alice", "secret"), Ev::Done(vec![])]);
    // user name as initial response
    let (out, evs) = run(
        LocalTls::Active,
        b"EHLO c\r\nAUTH login YWxpY2U=\r\nc2VjcmV0\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        &ehlo_auth(),
        b"334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [login("alice", "secret"), Ev::Done(vec![])]);
}

/// AUTH LOGIN with a pipelined command behind it, split at every position into two
/// reads and also fed byte by byte: the transcript never changes.
#[test]
fn auth_login_split_everywhere() {
    let input: &[u8] = b"EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\nMAIL FROM:<>\r\n";
    let expected_out = text(&[
        GREETING,
        &ehlo_auth(),
        b"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n",
    ]);
    let expected_evs = [
        login("alice", "secret"),
        Ev::Done(b"MAIL FROM:<>\r\n".to_vec()),
    ];
    for (cut, chunks) in testing::two_reads(&[], input, &[]) {
        let mut m = machine(LocalTls::Active, Limits::default());
        let (out, evs) = drive(&mut m, &chunks, &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            expected_out,
            "cut at {cut}"
        );
        assert_eq!(evs, expected_evs, "cut at {cut}");
    }
    let (out, evs) = drive(
        &mut machine(LocalTls::Active, Limits::default()),
        &testing::bytewise(input),
        &[],
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected_out);
    assert_eq!(evs, expected_evs);
}

#[test]
fn cancel_bad_base64_and_foreign_mechanisms() {
    // eight refusals in a row: raise max_errors so the good login at the end runs
    let limits = Limits {
        max_errors: 100,
        ..Limits::default()
    };
    let (out, evs) = run_limits(
        LocalTls::Active,
        limits,
        b"EHLO c\r\nAUTH LOGIN\r\n*\r\nAUTH PLAIN\r\n*\r\nAUTH LOGIN YWxpY2U=\r\n*\r\n\
          AUTH PLAIN !!\r\nAUTH LOGIN\r\n%%%\r\nAUTH LOGIN /w==\r\n\
          AUTH XOAUTH2 dXNlcj1hAWF1dGg9QmVhcmVyIHQBAQ==\r\nAUTH OAUTHBEARER\r\nAUTH CRAM-MD5\r\n\
          AUTH PLAIN AGEAYg==\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        &ehlo_auth(),
        b"334 VXNlcm5hbWU6\r\n501 5.0.0 Authentication cancelled\r\n",
        b"334 \r\n501 5.0.0 Authentication cancelled\r\n",
        b"334 UGFzc3dvcmQ6\r\n501 5.0.0 Authentication cancelled\r\n",
        b"501 5.5.2 Invalid base64\r\n",
        b"334 VXNlcm5hbWU6\r\n501 5.5.2 Invalid base64\r\n",
        b"501 5.5.2 Invalid UTF-8\r\n",
        // the client's own OAuth is never forwarded
        b"504 5.5.4 Unrecognized authentication type\r\n",
        b"504 5.5.4 Unrecognized authentication type\r\n",
        b"504 5.5.4 Unrecognized authentication type\r\n",
        b"235 2.7.0 Authentication successful\r\n",
    ]);
    assert_eq!(out, expected);
    assert_eq!(evs, [login("a", "b"), Ev::Done(vec![])]);
}

#[test]
fn auth_before_ehlo_and_mail_before_auth() {
    let (out, evs) = run(
        LocalTls::Active,
        b"AUTH PLAIN AGEAYg==\r\nMAIL FROM:<a@x>\r\nEHLO c\r\nRCPT TO:<b@y>\r\nDATA\r\n",
        &[],
    );
    let expected = text(&[
        GREETING,
        b"503 5.5.1 EHLO first\r\n",
        b"530 5.7.0 Authentication required\r\n",
        &ehlo_auth(),
        b"530 5.7.0 Authentication required\r\n",
        b"530 5.7.0 Authentication required\r\n",
    ]);
    assert_eq!(out, expected);
    assert!(evs.is_empty());
}

/// Commands pipelined behind AUTH wait for the login's outcome: nothing after it is
/// answered before the verdict; after a rejection the machine answers them itself (no
/// `Done`: nothing reaches the upstream), after an acceptance they are the leftover.
#[test]
fn pipelined_commands_wait_for_the_login() {
    let auth = b"EHLO c\r\nAUTH PLAIN AHUAcA==\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n";
    let login = b"EHLO c\r\nAUTH LOGIN dQ==\r\ncA==\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n";
    for (input, prompts) in [(&auth[..], &b""[..]), (&login[..], b"334 UGFzc3dvcmQ6\r\n")] {
        let mut m = machine(LocalTls::Active, Limits::default());
        let before = testing::written_before_login(&mut m, input);
        assert_eq!(before, [GREETING, &ehlo_auth(), prompts].concat());
        let (out, evs) =
            testing::after_verdict(&mut m, Verdict::Reject(LoginRejection::BadCredentials));
        let expected = text(&[
            b"535 5.7.8 Authentication credentials invalid\r\n",
            b"530 5.7.0 Authentication required\r\n530 5.7.0 Authentication required\r\n",
        ]);
        assert_eq!(out, expected);
        assert!(evs.is_empty(), "{evs:?}");

        let mut m = machine(LocalTls::Active, Limits::default());
        testing::written_before_login(&mut m, input);
        let (out, evs) = testing::after_verdict(&mut m, Verdict::Accept(ACCEPT_CAPS));
        assert_eq!(out, "235 2.7.0 Authentication successful\r\n");
        assert_eq!(
            evs,
            [Ev::Done(b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n".to_vec())]
        );
    }
}
