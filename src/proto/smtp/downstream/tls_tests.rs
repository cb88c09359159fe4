//! STARTTLS and EHLO transcripts of the downstream machine (byte-exact).

use super::tests::*;
use super::*;
use proptest::prelude::*;

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
    crate::proto::testing::feed_until_starttls(&mut m, b"STARTTLS\r\n", 2);
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

proptest! {
    /// Whatever the probe learned, the EHLO reply is well-formed: complete lines of at
    /// most 512 octets, one final `250 `, and only our own AUTH and STARTTLS.
    #[test]
    fn ehlo_reply_is_safe_for_any_extensions(
        exts in proptest::collection::vec(
            prop_oneof![".{0,40}", "AUTH[= ][A-Z ]{0,20}", "[A-Za-z0-9-]{1,10}( [ -~]{0,600})?"],
            0..12),
        tls in 0u8..3,
    ) {
        let tls = crate::proto::testing::local_tls(tls);
        let mut m = SmtpDownstream::new(tls, Limits::default(), "mx.example", exts);
        let (out, _) = drive(&mut m, &[b"EHLO c\r\n"], &[]);
        let reply = &out[GREETING.len()..];
        let lines: Vec<&[u8]> = reply.split_inclusive(|&b| b == b'\n').collect();
        for (n, line) in lines.iter().enumerate() {
            prop_assert!(line.len() <= 512 && line.ends_with(b"\r\n"));
            let prefix: &[u8] = if n + 1 == lines.len() { b"250 " } else { b"250-" };
            prop_assert!(line.starts_with(prefix));
            prop_assert!(!line[..line.len() - 2].contains(&b'\r'));
        }
        let auth = lines.iter().filter(|l| crate::proto::smtp::parse::is_keyword(
            std::str::from_utf8(&l[4..l.len() - 2]).unwrap(), "AUTH")).count();
        let starttls = lines.iter().filter(|l| crate::proto::smtp::parse::is_keyword(
            std::str::from_utf8(&l[4..l.len() - 2]).unwrap(), "STARTTLS")).count();
        prop_assert_eq!((auth, starttls), if tls == LocalTls::StartTlsRequired { (0, 1) } else { (1, 0) });
    }
}
