//! Byte-exact transcripts of the upstream machine against scripted servers.

use super::*;
use proptest::prelude::*;
use secrecy::ExposeSecret;

pub(super) fn login(tls: UpstreamTls, mechanism: Mechanism) -> UpstreamLogin {
    UpstreamLogin {
        tls,
        mechanism,
        username: "user@example.com".into(),
        access_token: SecretString::from("tok".to_owned()),
        host: "pop.example.com".into(),
        port: 995,
    }
}

pub(super) fn xoauth2_ir() -> String {
    let l = login(UpstreamTls::Implicit, Mechanism::Xoauth2);
    sasl::xoauth2_initial_response(&l.username, &l.access_token)
        .expose_secret()
        .to_owned()
}

pub(super) fn oauthbearer_ir() -> String {
    let l = login(UpstreamTls::Implicit, Mechanism::Oauthbearer);
    sasl::oauthbearer_initial_response(&l.username, &l.host, l.port, &l.access_token)
        .expose_secret()
        .to_owned()
}

#[derive(Debug, PartialEq)]
pub(super) enum End {
    LoggedIn(Vec<u8>),
    Error(Pop3Error),
    /// The script ran out while the machine wanted more.
    Stalled,
}

/// Feeds the server's bytes whenever the machine needs input; returns what the
/// client wrote (with `<TLS>` where the handshake happened) and how it ended.
pub(super) fn drive(m: &mut Pop3Upstream, chunks: &[&[u8]]) -> (String, End) {
    let mut chunks = chunks.iter();
    let mut out = Vec::new();
    loop {
        match m.next() {
            Ok(UpstreamEvent::LoggedIn {
                capabilities,
                mut leftover,
            }) => {
                assert_eq!(capabilities, None);
                // what the driver reads later is spliced after the leftover
                leftover.extend(chunks.by_ref().copied().flatten());
                return (String::from_utf8(out).unwrap(), End::LoggedIn(leftover));
            }
            Err(Interrupt::Io(Io::Write(b))) => out.extend(b),
            Err(Interrupt::Io(Io::NeedInput)) => match chunks.next() {
                Some(c) => m.feed(c),
                None => return (String::from_utf8(out).unwrap(), End::Stalled),
            },
            Err(Interrupt::Io(Io::StartTls)) => {
                out.extend(b"<TLS>");
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) => panic!("upstream machine never closes by itself"),
            Err(Interrupt::Error(e)) => return (String::from_utf8(out).unwrap(), End::Error(e)),
        }
    }
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
    assert_eq!(end, End::LoggedIn(b"+OK 2 messages\r\n".to_vec()));
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
    assert_eq!(end, End::LoggedIn(vec![]));
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
    for (phase, input) in [(0, before), (1, after)] {
        for cut in 0..=input.len() {
            let mut m = Pop3Upstream::new(
                login(UpstreamTls::StartTls, Mechanism::Xoauth2),
                Limits::default(),
            );
            let chunks: Vec<&[u8]> = match phase {
                0 => vec![&before[..cut], &before[cut..], after],
                _ => vec![before, &after[..cut], &after[cut..]],
            };
            let (out, end) = drive(&mut m, &chunks);
            assert_eq!(out, expected, "phase {phase} cut {cut}");
            assert_eq!(
                end,
                End::LoggedIn(b"+OK 0 0\r\n".to_vec()),
                "phase {phase} cut {cut}"
            );
        }
    }
    // and byte by byte
    let all = [before, after].concat();
    let mut m = Pop3Upstream::new(
        login(UpstreamTls::StartTls, Mechanism::Xoauth2),
        Limits::default(),
    );
    let bytes: Vec<&[u8]> = all.chunks(1).collect();
    let (out, end) = drive(&mut m, &bytes);
    assert_eq!(out, expected);
    assert_eq!(end, End::LoggedIn(b"+OK 0 0\r\n".to_vec()));
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
    assert_eq!(end, End::LoggedIn(vec![]));
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
    let mut dump = String::new();
    for _ in 0..3 {
        let step = m.next();
        dump.push_str(&format!("{step:?} {m:?}\n"));
    }
    assert!(dump.contains("Write("), "{dump}");
    assert!(
        !dump.contains("tok\"") && !dump.contains(&xoauth2_ir()),
        "{dump}"
    );
}

fn soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"+OK ".to_vec()),
        Just(b"-ERR ".to_vec()),
        Just(b"[SYS/TEMP] ".to_vec()),
        Just(b"[AUTH] ".to_vec()),
        Just(b"STLS".to_vec()),
        Just(b"SASL XOAUTH2 OAUTHBEARER".to_vec()),
        Just(b".".to_vec()),
        Just(b"+ eyJzdGF0dXMiOiI0MDEifQ==".to_vec()),
        Just(b"\r\n".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// No server input makes the machine panic or loop, and with STLS required a
    /// login only completes after the handshake.
    #[test]
    fn arbitrary_server_input(input in soup(), chunk in 1usize..30, tls in 0u8..3, bearer: bool) {
        let tls = [UpstreamTls::Implicit, UpstreamTls::StartTls, UpstreamTls::None][tls as usize];
        let mech = if bearer { Mechanism::Oauthbearer } else { Mechanism::Xoauth2 };
        let mut m = Pop3Upstream::new(login(tls, mech), Limits::default());
        let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
        let (out, end) = drive(&mut m, &chunks);
        if tls == UpstreamTls::StartTls && matches!(end, End::LoggedIn(..)) {
            prop_assert!(out.contains("<TLS>"));
        }
    }

    /// However the server's bytes are split into reads, the outcome is the same.
    #[test]
    fn chunking_invariance(cuts in proptest::collection::vec(0usize..400, 0..8)) {
        let server = format!("{DOVECOT}+ e30=\r\n-ERR [AUTH] no\r\n");
        let input = server.as_bytes();
        let whole = run(UpstreamTls::Implicit, Mechanism::Xoauth2, input);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([input.len()]) {
            chunks.push(&input[prev..c]);
            prev = c;
        }
        let mut m = Pop3Upstream::new(login(UpstreamTls::Implicit, Mechanism::Xoauth2), Limits::default());
        prop_assert_eq!(drive(&mut m, &chunks), whole);
    }
}
