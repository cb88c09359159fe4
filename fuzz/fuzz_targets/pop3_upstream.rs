//! Drives the upstream POP3 machine with arbitrary server bytes in arbitrary chunks.
//! Checks: no panic, no endless loop, bounded writes, and a login only ever completes
//! over TLS when STLS is required.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use oauth_mail_proxy::proto::pop3::{Pop3Upstream, UpstreamEvent};
use oauth_mail_proxy::proto::{Interrupt, Io, Limits, Mechanism, UpstreamLogin, UpstreamTls};
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
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
        host: "pop.example.com".into(),
        port: 995,
    };
    let mut handshakes = 0;
    let mut m = Pop3Upstream::new(login, Limits::default());
    let mut spins = 0u32;
    loop {
        spins += 1;
        assert!(spins < 100_000, "machine does not make progress");
        match m.next() {
            Ok(UpstreamEvent::LoggedIn { capabilities, .. }) => {
                assert!(capabilities.is_none());
                assert!(
                    tls != UpstreamTls::StartTls || handshakes == 1,
                    "logged in without STLS"
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
                    "unexpected STLS"
                );
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) | Err(Interrupt::Error(_)) => return,
        }
    }
});
