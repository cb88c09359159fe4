//! Drives the client-role SMTP machines (the upstream login and the extension probe,
//! chosen by the first byte) with arbitrary server bytes in arbitrary chunks.
//! Checks: no panic, no endless loop, bounded writes, and a login or a probe result
//! only ever comes over TLS when STARTTLS is required.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use oauth_mail_proxy::proto::smtp::{SmtpError, SmtpProbe, SmtpUpstream};
use oauth_mail_proxy::proto::{Interrupt, Io, Limits, Mechanism, UpstreamLogin, UpstreamTls};
use secrecy::SecretString;

/// The two machines behind one interface.
enum Client {
    Login(SmtpUpstream),
    Probe(SmtpProbe),
}

impl Client {
    /// `Ok(())` when the machine produced its event.
    fn next(&mut self) -> Result<(), Interrupt<SmtpError>> {
        match self {
            Client::Login(m) => m.next().map(drop),
            Client::Probe(m) => m.next().map(drop),
        }
    }
    fn feed(&mut self, bytes: &[u8]) {
        match self {
            Client::Login(m) => m.feed(bytes),
            Client::Probe(m) => m.feed(bytes),
        }
    }
    fn tls_established(&mut self) {
        match self {
            Client::Login(m) => m.tls_established(),
            Client::Probe(m) => m.tls_established(),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let probe = u.arbitrary::<bool>().unwrap_or(false);
    let tls = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => UpstreamTls::Implicit,
        1 => UpstreamTls::StartTls,
        _ => UpstreamTls::None,
    };
    let mechanism = if u.arbitrary::<bool>().unwrap_or(false) {
        Mechanism::Oauthbearer
    } else {
        Mechanism::Xoauth2
    };
    let login = UpstreamLogin {
        tls,
        mechanism,
        username: "user@example.com".into(),
        access_token: SecretString::from("ya29.token".to_owned()),
        host: "smtp.example.com".into(),
        port: 587,
    };
    let mut m = if probe {
        Client::Probe(SmtpProbe::new(tls, Limits::default(), "proxy.example"))
    } else {
        Client::Login(SmtpUpstream::new(
            login,
            Limits::default(),
            "client.example",
        ))
    };
    let mut handshakes = 0;
    let mut spins = 0u32;
    loop {
        spins += 1;
        assert!(spins < 100_000, "machine does not make progress");
        match m.next() {
            Ok(()) => {
                assert!(
                    tls != UpstreamTls::StartTls || handshakes == 1,
                    "finished without STARTTLS"
                );
                return;
            }
            Err(Interrupt::Io(Io::Write(bytes))) => {
                assert!(bytes.ends_with(b"\r\n") && bytes.len() < 4096, "odd write");
            }
            Err(Interrupt::Io(Io::NeedInput)) => {
                let len = u.int_in_range(0..=256usize).unwrap_or(0);
                let Ok(chunk) = u.bytes(len.min(u.len())) else {
                    return;
                };
                if chunk.is_empty() && u.is_empty() {
                    return;
                }
                m.feed(chunk);
            }
            Err(Interrupt::Io(Io::StartTls)) => {
                handshakes += 1;
                assert!(
                    handshakes == 1 && tls == UpstreamTls::StartTls,
                    "unexpected STARTTLS"
                );
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) | Err(Interrupt::Error(_)) => return,
        }
    }
});
