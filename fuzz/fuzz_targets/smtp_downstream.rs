//! Drives the downstream SMTP machine with arbitrary bytes in arbitrary chunks,
//! answering logins arbitrarily. Checks: no panic, no endless loop, every reply line
//! we write is complete and within SMTP's 512 octets, no login before EHLO, and no
//! login before a required STARTTLS.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use oauth_mail_proxy::proto::smtp::{DownstreamEvent, SmtpDownstream};
use oauth_mail_proxy::proto::{Interrupt, Io, Limits, LocalTls, LoginRejection};

/// Small limits so the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_line: 256,
    max_literal: 64,
    max_sasl: 128,
    max_auth_failures: 3,
    max_errors: 8,
};

/// RFC 5321's limit on a reply line, CRLF included.
const MAX_OUT_LINE: usize = 512;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let tls = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => LocalTls::None,
        1 => LocalTls::StartTlsRequired,
        _ => LocalTls::Active,
    };
    // The upstream's extensions are probe output: arbitrary too.
    let extensions: Vec<String> = u.arbitrary().unwrap_or_default();
    let mut encrypted = tls != LocalTls::StartTlsRequired;
    let mut m = SmtpDownstream::new(tls, LIMITS, "mx.example", extensions);
    let mut spins = 0u32;
    loop {
        spins += 1;
        assert!(spins < 100_000, "machine does not make progress");
        match m.next() {
            Ok(DownstreamEvent::Login(_creds)) => {
                assert!(encrypted, "login accepted before the required STARTTLS");
                assert!(m.client_domain().is_some(), "login before EHLO");
                match u.int_in_range(0..=3u8).unwrap_or(0) {
                    0 => m.accept(None),
                    1 => m.reject(LoginRejection::BadCredentials),
                    2 => m.reject(LoginRejection::NeedsReauthorization("x\r\ny".into())),
                    _ => m.reject(LoginRejection::Unavailable("later".into())),
                }
            }
            Ok(DownstreamEvent::Done { .. }) => return,
            Err(Interrupt::Io(Io::Write(bytes))) => {
                assert!(bytes.ends_with(b"\r\n"), "partial line written");
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    assert!(line.len() <= MAX_OUT_LINE, "overlong reply line");
                    assert!(line.ends_with(b"\r\n"), "bare LF written");
                }
            }
            Err(Interrupt::Io(Io::NeedInput)) => {
                let len = u.int_in_range(0..=64usize).unwrap_or(0);
                let Ok(chunk) = u.bytes(len.min(u.len())) else {
                    return;
                };
                if chunk.is_empty() && u.is_empty() {
                    return;
                }
                m.feed(chunk);
            }
            Err(Interrupt::Io(Io::StartTls)) => {
                encrypted = true;
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) | Err(Interrupt::Error(_)) => return,
        }
    }
});
