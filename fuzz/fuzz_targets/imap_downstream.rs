//! Drives the downstream IMAP machine with arbitrary bytes in arbitrary chunks,
//! answering logins arbitrarily. Checks: no panic, no endless loop, every line we
//! write stays bounded, and no login gets through before a required STARTTLS.
#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use oauth_mail_proxy::proto::imap::{DownstreamEvent, ImapDownstream, LoginRejection};
use oauth_mail_proxy::proto::{Interrupt, Io, Limits, LocalTls};

/// Small limits so the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_line: 256,
    max_literal: 64,
    max_sasl: 128,
    max_auth_failures: 3,
    max_errors: 8,
};

/// Longest line the machine may write: a tag (< max_line) plus fixed text.
const MAX_OUT_LINE: usize = LIMITS.max_line + 512;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let tls = match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => LocalTls::None,
        1 => LocalTls::StartTlsRequired,
        _ => LocalTls::Active,
    };
    let mut encrypted = tls != LocalTls::StartTlsRequired;
    let mut m = ImapDownstream::new(tls, LIMITS);
    let mut spins = 0u32;
    loop {
        spins += 1;
        assert!(spins < 100_000, "machine does not make progress");
        match m.next() {
            Ok(DownstreamEvent::Login(_creds)) => {
                assert!(encrypted, "login accepted before the required STARTTLS");
                match u.int_in_range(0..=3u8).unwrap_or(0) {
                    0 => m.accept(Some("IMAP4rev1 IDLE")),
                    1 => m.reject(LoginRejection::BadCredentials),
                    2 => m.reject(LoginRejection::NeedsReauthorization("x\r\ny".into())),
                    _ => m.reject(LoginRejection::Unavailable("later".into())),
                }
            }
            Ok(DownstreamEvent::Done { .. }) => return,
            Err(Interrupt::Io(Io::Write(bytes))) => {
                assert!(bytes.ends_with(b"\r\n"), "partial line written");
                for line in bytes.split(|&b| b == b'\n') {
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
