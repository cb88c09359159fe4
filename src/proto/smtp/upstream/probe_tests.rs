//! Byte-exact transcripts of the probe against scripted servers.

use super::probe::SmtpProbe;
use super::*;
use crate::proto::UpstreamTls;
use crate::proto::smtp::types::ProbeEvent;
use crate::proto::testing::{self, Ending};

#[derive(Debug, PartialEq)]
enum End {
    Extensions(Vec<String>),
    Error(SmtpError),
    Stalled,
}

fn drive(m: &mut SmtpProbe, chunks: &[&[u8]]) -> (String, End) {
    let (out, end, _) = testing::drive_client(m, chunks);
    let end = match end {
        Ending::Event(ProbeEvent::Extensions(e)) => End::Extensions(e),
        Ending::Error(e) => End::Error(e),
        Ending::Stalled => End::Stalled,
    };
    (out, end)
}

fn probe(tls: UpstreamTls) -> SmtpProbe {
    SmtpProbe::new(tls, Limits::default(), "proxy.example")
}

fn exts(list: &[&str]) -> End {
    End::Extensions(list.iter().map(|s| (*s).to_owned()).collect())
}

const GMAIL_TLS: &[u8] = b"250-smtp.gmail.com at your service, [192.0.2.1]\r\n\
    250-SIZE 35882577\r\n250-8BITMIME\r\n250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n\
    250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 SMTPUTF8\r\n";

/// The STARTTLS probe, split at every position of each phase: only the post-TLS
/// list comes out.
#[test]
fn starttls_probe_split_everywhere() {
    let before: &[u8] = b"220 smtp.gmail.com ESMTP ready\r\n250-smtp.gmail.com\r\n\
        250-SIZE 35882577\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n220 2.0.0 Ready to start TLS\r\n";
    let after = [GMAIL_TLS, b"221 2.0.0 closing connection\r\n"].concat();
    let expected_out = "EHLO proxy.example\r\nSTARTTLS\r\n<TLS>EHLO proxy.example\r\nQUIT\r\n";
    let expected = exts(&[
        "SIZE 35882577",
        "8BITMIME",
        "AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
        "ENHANCEDSTATUSCODES",
        "PIPELINING",
        "CHUNKING",
        "SMTPUTF8",
    ]);
    for (phase, input) in [(0, before), (1, after.as_slice())] {
        for cut in 0..=input.len() {
            let chunks: Vec<&[u8]> = match phase {
                0 => vec![&before[..cut], &before[cut..], &after],
                _ => vec![before, &after[..cut], &after[cut..]],
            };
            let (out, end) = drive(&mut probe(UpstreamTls::StartTls), &chunks);
            assert_eq!(out, expected_out, "phase {phase} cut {cut}");
            assert_eq!(end, expected, "phase {phase} cut {cut}");
        }
    }
}

#[test]
fn implicit_and_plain_probes() {
    for tls in [UpstreamTls::Implicit, UpstreamTls::None] {
        // STARTTLS offered but not wanted: not used; the list is passed on as is
        let server =
            b"220 hi\r\n250-mx\r\n250-STARTTLS\r\n250-AUTH=PLAIN\r\n250 DSN\r\n221 bye\r\n";
        let (out, end) = drive(&mut probe(tls), &[server]);
        assert_eq!(out, "EHLO proxy.example\r\nQUIT\r\n");
        assert_eq!(end, exts(&["STARTTLS", "AUTH=PLAIN", "DSN"]));
    }
    // no extensions at all; an odd answer to QUIT still ends the probe
    let (out, end) = drive(
        &mut probe(UpstreamTls::Implicit),
        &[b"220 hi\r\n250 mx\r\n", b"500 5.5.1 what\r\n"],
    );
    assert_eq!(out, "EHLO proxy.example\r\nQUIT\r\n");
    assert_eq!(end, exts(&[]));
    // the event waits for the reply to QUIT
    let (_, end) = drive(
        &mut probe(UpstreamTls::Implicit),
        &[b"220 hi\r\n250 mx\r\n"],
    );
    assert_eq!(end, End::Stalled);
}

#[test]
fn probe_failures() {
    let auth_err = |e| End::Error(SmtpError::Auth(e));
    let rows: Vec<(UpstreamTls, &[u8], End)> = vec![
        (
            UpstreamTls::StartTls,
            b"220 hi\r\n250-mx\r\n250 SIZE\r\n",
            auth_err(UpstreamAuthError::StartTlsUnavailable),
        ),
        (
            UpstreamTls::StartTls,
            b"220 hi\r\n250-mx\r\n250 STARTTLS\r\n220 go\r\n250 injected\r\n",
            End::Error(SmtpError::StartTlsInjection),
        ),
        (
            UpstreamTls::Implicit,
            b"421 4.7.0 try again later\r\n",
            auth_err(UpstreamAuthError::Unavailable("try again later".into())),
        ),
    ];
    for (tls, server, expected) in rows {
        let (_, end) = drive(&mut probe(tls), &[server]);
        assert_eq!(end, expected, "{}", String::from_utf8_lossy(server));
    }
}
