//! Drives the downstream POP3 machine with arbitrary bytes in arbitrary chunks,
//! answering logins arbitrarily. Checks: no panic, no endless loop, every write is
//! whole bounded lines, and no login gets through before a required STLS.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use oauth_mail_proxy::proto::pop3::{DownstreamEvent, LoginRejection, Pop3Downstream};
use oauth_mail_proxy::proto::{Interrupt, Io, Limits, LocalTls};

/// Small limits so the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_line: 256,
    max_literal: 64,
    max_sasl: 128,
    max_auth_failures: 3,
    max_errors: 8,
};

/// Longest line the machine may write (RFC 1939: 512 octets with CRLF).
const MAX_OUT_LINE: usize = 512;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let tls = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => LocalTls::None,
        1 => LocalTls::StartTlsRequired,
        _ => LocalTls::Active,
    };
    let mut encrypted = tls != LocalTls::StartTlsRequired;
    let mut m = Pop3Downstream::new(tls, LIMITS);
    let mut spins = 0u32;
    loop {
        spins += 1;
        assert!(spins < 100_000, "machine does not make progress");
        match m.next() {
            Ok(DownstreamEvent::Login(_creds)) => {
                assert!(encrypted, "login accepted before the required STLS");
                match u.int_in_range(0..=3u8).unwrap_or(0) {
                    0 => m.accept(Some("TOP UIDL")),
                    1 => m.reject(LoginRejection::BadCredentials),
                    2 => m.reject(LoginRejection::NeedsReauthorization("x\r\ny".into())),
                    _ => m.reject(LoginRejection::Unavailable("later".into())),
                }
            }
            Ok(DownstreamEvent::Done { .. }) => return,
            Err(Interrupt::Io(Io::Write(bytes))) => {
                assert!(bytes.ends_with(b"\r\n"), "partial line written");
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    assert!(line.len() <= MAX_OUT_LINE, "unbounded output line");
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
