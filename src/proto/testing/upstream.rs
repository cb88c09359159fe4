//! The client-side (upstream and probe) transcript driver and its helpers.

use std::fmt::Debug;

use secrecy::{ExposeSecret, SecretString};

use super::Machine;
use crate::proto::{Interrupt, Io, Mechanism, UpstreamEvent, UpstreamLogin, UpstreamTls, sasl};

/// How a client-side machine's run ended.
#[derive(Debug, PartialEq)]
pub(crate) enum Ending<T, E> {
    Event(T),
    Error(E),
    /// The script ran out while the machine wanted more.
    Stalled,
}

/// Feeds the server's bytes whenever a client-side machine needs input; returns what
/// the client wrote (with `<TLS>` where the handshake happened), how it ended, and the
/// bytes of the chunks it never read.
pub(crate) fn drive_client<M: Machine>(
    m: &mut M,
    chunks: &[&[u8]],
) -> (String, Ending<M::Event, M::Error>, Vec<u8>) {
    let mut chunks = chunks.iter();
    let mut out = Vec::new();
    let end = loop {
        match m.next() {
            Ok(ev) => break Ending::Event(ev),
            Err(Interrupt::Io(Io::Write(b))) => out.extend(b),
            Err(Interrupt::Io(Io::NeedInput)) => match chunks.next() {
                Some(c) => m.feed(c),
                None => break Ending::Stalled,
            },
            Err(Interrupt::Io(Io::StartTls)) => {
                out.extend(b"<TLS>");
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) => panic!("client-side machines never close"),
            Err(Interrupt::Error(e)) => break Ending::Error(e),
        }
    };
    let unread = chunks.copied().flatten().copied().collect();
    (String::from_utf8(out).unwrap(), end, unread)
}

/// How an upstream login transcript ended.
#[derive(Debug, PartialEq)]
pub(crate) enum End<E> {
    /// Capabilities, and the leftover with what the driver reads later spliced after it.
    LoggedIn(Option<String>, Vec<u8>),
    Error(E),
    /// The script ran out while the machine wanted more.
    Stalled,
}

/// [`drive_client`] for an upstream login machine.
pub(crate) fn drive_upstream<M: Machine<Event = UpstreamEvent>>(
    m: &mut M,
    chunks: &[&[u8]],
) -> (String, End<M::Error>) {
    let (out, end, unread) = drive_client(m, chunks);
    let end = match end {
        Ending::Event(UpstreamEvent::LoggedIn {
            capabilities,
            mut leftover,
        }) => {
            leftover.extend(unread);
            End::LoggedIn(capabilities, leftover)
        }
        Ending::Error(e) => End::Error(e),
        Ending::Stalled => End::Stalled,
    };
    (out, end)
}

/// [`drive_upstream`] for POP3 and SMTP, whose logins never carry capabilities.
pub(crate) fn drive_upstream_without_caps<M: Machine<Event = UpstreamEvent>>(
    m: &mut M,
    chunks: &[&[u8]],
) -> (String, End<M::Error>) {
    let (out, end) = drive_upstream(m, chunks);
    if let End::LoggedIn(capabilities, _) = &end {
        assert_eq!(*capabilities, None);
    }
    (out, end)
}

/// Runs each `(server, expected_out, expected_end)` row through `run`.
pub(crate) fn check_rows<E: Debug + PartialEq>(
    rows: &[(&[u8], &str, End<E>)],
    run: impl Fn(&[u8]) -> (String, End<E>),
) {
    for (server, expected_out, expected_end) in rows {
        let (out, end) = run(server);
        assert_eq!(
            (out.as_str(), &end),
            (*expected_out, expected_end),
            "{}",
            String::from_utf8_lossy(server)
        );
    }
}

/// Feeds `input` (which ends with the STARTTLS go-ahead): the machine writes `writes`
/// times, then asks for the handshake.
pub(crate) fn feed_until_starttls<M: Machine>(m: &mut M, input: &[u8], writes: usize) {
    m.feed(input);
    for _ in 0..writes {
        assert!(matches!(m.next(), Err(Interrupt::Io(Io::Write(_)))));
    }
    assert!(matches!(m.next(), Err(Interrupt::Io(Io::StartTls))));
}

/// With STARTTLS required, a login completes only after the handshake.
pub(crate) fn tls_before_login<E>(tls: UpstreamTls, out: &str, end: &End<E>) -> bool {
    tls != UpstreamTls::StartTls || !matches!(end, End::LoggedIn(..)) || out.contains("<TLS>")
}

/// The upstream login the upstream tests use (token `tok`).
pub(crate) fn upstream_login(
    host: &str,
    port: u16,
    tls: UpstreamTls,
    mechanism: Mechanism,
) -> UpstreamLogin {
    UpstreamLogin {
        tls,
        mechanism,
        username: "user@example.com".into(),
        access_token: SecretString::from("tok".to_owned()),
        host: host.into(),
        port,
    }
}

/// The XOAUTH2 initial response the machine should send for `l`.
pub(crate) fn xoauth2_ir(l: &UpstreamLogin) -> String {
    sasl::xoauth2_initial_response(&l.username, &l.access_token)
        .expose_secret()
        .to_owned()
}

/// The OAUTHBEARER initial response the machine should send for `l`.
pub(crate) fn oauthbearer_ir(l: &UpstreamLogin) -> String {
    sasl::oauthbearer_initial_response(&l.username, &l.host, l.port, &l.access_token)
        .expose_secret()
        .to_owned()
}

/// `Debug` of the machine and its next `steps` results: must show that a write
/// happened, never the token nor the initial response `ir`.
pub(crate) fn assert_token_hidden<M: Machine + Debug>(m: &mut M, steps: usize, ir: &str)
where
    M::Event: Debug,
    M::Error: Debug,
{
    let mut dump = String::new();
    for _ in 0..steps {
        let step = m.next();
        dump.push_str(&format!("{step:?} {m:?}\n"));
    }
    assert!(dump.contains("Write("), "{dump}");
    assert!(!dump.contains("tok\"") && !dump.contains(ir), "{dump}");
}

/// `UpstreamTls` from a proptest index (0..3).
pub(crate) fn upstream_tls(i: u8) -> UpstreamTls {
    [
        UpstreamTls::Implicit,
        UpstreamTls::StartTls,
        UpstreamTls::None,
    ][usize::from(i)]
}

/// The mechanism from a proptest bool.
pub(crate) fn mechanism(bearer: bool) -> Mechanism {
    if bearer {
        Mechanism::Oauthbearer
    } else {
        Mechanism::Xoauth2
    }
}
