//! Byte-exact transcripts of the downstream machine.

use super::*;
use proptest::prelude::*;
use secrecy::ExposeSecret;

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

/// What the session decides for each login, in order (default: accept).
#[derive(Clone)]
pub(super) enum Verdict {
    Accept,
    Reject(LoginRejection),
}

#[derive(Debug, PartialEq)]
pub(super) enum Ev {
    Login(Option<String>, String, String),
    Done(Vec<u8>),
    StartTls,
    Close,
    Error(SmtpError),
}

pub(super) fn login(user: &str, pass: &str) -> Ev {
    Ev::Login(None, user.into(), pass.into())
}

/// A tiny driver: feeds `chunks` whenever the machine needs input, collects what it
/// writes, answers logins from `verdicts`, and "handshakes" on StartTls.
pub(super) fn drive(
    m: &mut SmtpDownstream,
    chunks: &[&[u8]],
    verdicts: &[Verdict],
) -> (Vec<u8>, Vec<Ev>) {
    let mut chunks = chunks.iter();
    let mut verdicts = verdicts.iter().cloned();
    let (mut out, mut evs) = (Vec::new(), Vec::new());
    loop {
        match m.next() {
            Ok(DownstreamEvent::Login(c)) => {
                let pass = c.password.expose_secret().to_owned();
                evs.push(Ev::Login(c.authzid, c.username, pass));
                match verdicts.next().unwrap_or(Verdict::Accept) {
                    Verdict::Accept => m.accept(Some("ignored")),
                    Verdict::Reject(r) => m.reject(r),
                }
            }
            Ok(DownstreamEvent::Done { mut leftover }) => {
                // what the driver reads later is spliced after the leftover
                leftover.extend(chunks.by_ref().copied().flatten());
                evs.push(Ev::Done(leftover));
                break;
            }
            Err(Interrupt::Io(Io::Write(b))) => out.extend(b),
            Err(Interrupt::Io(Io::NeedInput)) => match chunks.next() {
                Some(c) => m.feed(c),
                None => break,
            },
            Err(Interrupt::Io(Io::StartTls)) => {
                evs.push(Ev::StartTls);
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) => {
                evs.push(Ev::Close);
                break;
            }
            Err(Interrupt::Error(e)) => {
                evs.push(Ev::Error(e));
                break;
            }
        }
    }
    (out, evs)
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

pub(super) fn text(parts: &[&[u8]]) -> String {
    String::from_utf8(parts.concat()).unwrap()
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
fn auth_plain_initial_response_with_pipelined_mail() {
    // `=`-free IR of "\0alice\0secret"; MAIL FROM pipelined right behind it
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
    for cut in 0..=input.len() {
        let mut m = machine(LocalTls::Active, Limits::default());
        let (out, evs) = drive(&mut m, &[&input[..cut], &input[cut..]], &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            expected_out,
            "cut at {cut}"
        );
        assert_eq!(evs, expected_evs, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    let (out, evs) = drive(
        &mut machine(LocalTls::Active, Limits::default()),
        &bytes,
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

#[test]
fn starttls_required_flow_resets_state() {
    let mut m = machine(LocalTls::StartTlsRequired, Limits::default());
    let (out, evs) = drive(
        &mut m,
        &[
            b"EHLO plain.example\r\nAUTH PLAIN AGEAYg==\r\nMAIL FROM:<>\r\n",
            b"STARTTLS\r\n",
            // after the handshake: the cleartext EHLO is forgotten
            b"AUTH PLAIN AGEAYg==\r\nEHLO tls.example\r\nSTARTTLS\r\nAUTH PLAIN AGEAYg==\r\n",
        ],
        &[],
    );
    let expected = text(&[
        GREETING,
        &ehlo_starttls(),
        b"530 5.7.0 Must issue a STARTTLS command first\r\n",
        b"530 5.7.0 Must issue a STARTTLS command first\r\n",
        b"220 2.0.0 Ready to start TLS\r\n",
        // no new greeting; AUTH before the new EHLO is out of sequence
        b"503 5.5.1 EHLO first\r\n",
        &ehlo_auth(),
        b"503 5.5.1 TLS already active\r\n",
        b"235 2.7.0 Authentication successful\r\n",
    ]);
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(evs, [Ev::StartTls, login("a", "b"), Ev::Done(vec![])]);
    assert_eq!(m.client_domain(), Some("tls.example"));
}

#[test]
fn client_domain_is_forgotten_at_starttls() {
    let mut m = machine(LocalTls::StartTlsRequired, Limits::default());
    m.feed(b"EHLO plain.example\r\nSTARTTLS\r\n");
    while !matches!(m.next(), Err(Interrupt::Io(Io::StartTls))) {}
    assert_eq!(m.client_domain(), Some("plain.example"));
    m.tls_established();
    assert_eq!(m.client_domain(), None);
}

#[test]
fn starttls_pipelining_is_refused() {
    // Pipelined in the same read: nothing after STARTTLS runs, not even its 220.
    let (out, evs) = run(
        LocalTls::StartTlsRequired,
        b"EHLO c\r\nSTARTTLS\r\nAUTH PLAIN AGEAYg==\r\n",
        &[],
    );
    assert_eq!(out, text(&[GREETING, &ehlo_starttls()]));
    assert_eq!(evs, [Ev::Error(SmtpError::StartTlsPipelining)]);
    // Even a single byte counts.
    let (_, evs) = run(LocalTls::StartTlsRequired, b"STARTTLS\r\n\n", &[]);
    assert_eq!(evs, [Ev::Error(SmtpError::StartTlsPipelining)]);
    // Bytes arriving after the 220 but before tls_established() are refused too.
    let mut m = machine(LocalTls::StartTlsRequired, Limits::default());
    m.feed(b"STARTTLS\r\n");
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::StartTls))));
    m.feed(b"EHLO evil\r\n");
    assert!(matches!(
        m.next(),
        Err(Interrupt::Error(SmtpError::StartTlsPipelining))
    ));
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::Close))));
}

#[test]
fn starttls_not_offered() {
    let (out, _) = run(LocalTls::None, b"STARTTLS\r\n", &[]);
    assert_eq!(
        out,
        text(&[GREETING, b"502 5.5.1 STARTTLS not available\r\n"])
    );
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
        m.feed(input);
        let mut dump = String::new();
        loop {
            let step = m.next();
            dump.push_str(&format!("{step:?} {m:?}\n"));
            if !matches!(step, Err(Interrupt::Io(Io::Write(_)))) {
                break;
            }
        }
        assert!(dump.contains("Login("), "{dump}");
        assert!(
            !dump.contains("hunter2") && !dump.contains("aHVudGVyMg"),
            "{dump}"
        );
    }
}

/// Commands a client might send before AUTH (no QUIT, no STARTTLS).
fn client_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"EHLO c\r\n".to_vec()),
        Just(b"NOOP\r\n".to_vec()),
        Just(b"MAIL FROM:<>\r\n".to_vec()),
        Just(b"BDAT 3\r\nx\r\n".to_vec()),
        Just(b"AUTH PLAIN AHUAcA==\r\n".to_vec()),
        Just(b"AUTH LOGIN\r\ndQ==\r\ncA==\r\n".to_vec()),
        Just(b"AUTH PLAIN\r\n*\r\n".to_vec()),
        Just(b"garbage\n".to_vec()),
    ]
}

proptest! {
    /// However the bytes are split into reads, the transcript is the same.
    #[test]
    fn chunking_invariance(lines in proptest::collection::vec(client_line(), 1..6),
                           cuts in proptest::collection::vec(0usize..200, 0..8)) {
        let input = lines.concat();
        let limits = Limits { max_errors: 100, max_auth_failures: 100, ..Limits::default() };
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
        let (out, evs) = drive(&mut machine(LocalTls::Active, limits), &chunks, &rejects);
        prop_assert_eq!(String::from_utf8(out).unwrap(), whole_out);
        prop_assert_eq!(evs, whole_evs);
    }
}
