//! What the fuzz targets share: the two driver loops as macros (one per machine side;
//! each file in `fuzz_targets/` is one call) and the helpers they use to draw
//! choices from the fuzzer's bytes.
//!
//! The order in which a target draws from [`Unstructured`] is part of its corpus
//! format: keep it when changing these.

use arbitrary::Unstructured;
use oauth_mail_proxy::proto::smtp::{SmtpError, SmtpProbe, SmtpUpstream};
use oauth_mail_proxy::proto::{Interrupt, Limits, LocalTls, LoginRejection, Mechanism};
use oauth_mail_proxy::proto::{UpstreamLogin, UpstreamTls};
use secrecy::SecretString;

pub use arbitrary;
pub use libfuzzer_sys;
pub use oauth_mail_proxy;

/// Small limits so the fuzzer reaches them.
pub const LIMITS: Limits = Limits {
    max_line: 256,
    max_literal: 64,
    max_sasl: 128,
    max_auth_failures: 3,
    max_errors: 8,
};

/// No machine needs this many steps for the few KiB a fuzz input holds.
pub const MAX_SPINS: u32 = 100_000;

/// The downstream TLS state.
pub fn local_tls(u: &mut Unstructured<'_>) -> LocalTls {
    match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => LocalTls::None,
        1 => LocalTls::StartTlsRequired,
        _ => LocalTls::Active,
    }
}

/// The session's answer to a login: `None` to accept, else the rejection.
pub fn verdict(u: &mut Unstructured<'_>) -> Option<LoginRejection> {
    match u.int_in_range(0..=3u8).unwrap_or(0) {
        0 => None,
        1 => Some(LoginRejection::BadCredentials),
        2 => Some(LoginRejection::NeedsReauthorization("x\r\ny".into())),
        _ => Some(LoginRejection::Unavailable("later".into())),
    }
}

/// The next read: up to `max` bytes; `None` when the input is used up.
pub fn chunk<'a>(u: &mut Unstructured<'a>, max: usize) -> Option<&'a [u8]> {
    let len = u.int_in_range(0..=max).unwrap_or(0);
    let chunk = u.bytes(len.min(u.len())).ok()?;
    if chunk.is_empty() && u.is_empty() {
        return None;
    }
    Some(chunk)
}

/// A downstream write: whole lines, each at most `max_line` long (`'\n'` included);
/// with `crlf_lines`, each line ends with CRLF (no bare LF).
pub fn check_downstream_write(bytes: &[u8], max_line: usize, crlf_lines: bool) {
    assert!(bytes.ends_with(b"\r\n"), "partial line written");
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        assert!(line.len() <= max_line, "unbounded output line");
        assert!(!crlf_lines || line.ends_with(b"\r\n"), "bare LF written");
    }
}

/// The upstream TLS mode and login (the mechanism drawn after the mode).
pub fn upstream_login(u: &mut Unstructured<'_>, host: &str, port: u16) -> UpstreamLogin {
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
    UpstreamLogin {
        tls,
        mechanism,
        username: "user@example.com".into(),
        access_token: SecretString::from("ya29.token".to_owned()),
        host: host.into(),
        port,
    }
}

/// The two client-role SMTP machines behind one interface.
pub enum SmtpClient {
    Login(SmtpUpstream),
    Probe(SmtpProbe),
}

impl SmtpClient {
    /// The login machine, or with `probe` the extension probe.
    pub fn new(probe: bool, login: UpstreamLogin) -> Self {
        if probe {
            SmtpClient::Probe(SmtpProbe::new(
                login.tls,
                Limits::default(),
                "proxy.example",
            ))
        } else {
            SmtpClient::Login(SmtpUpstream::new(
                login,
                Limits::default(),
                "client.example",
            ))
        }
    }
    /// `Ok(())` when the machine produced its event.
    pub fn next(&mut self) -> Result<(), Interrupt<SmtpError>> {
        match self {
            SmtpClient::Login(m) => m.next().map(drop),
            SmtpClient::Probe(m) => m.next().map(drop),
        }
    }
    pub fn feed(&mut self, bytes: &[u8]) {
        match self {
            SmtpClient::Login(m) => m.feed(bytes),
            SmtpClient::Probe(m) => m.feed(bytes),
        }
    }
    pub fn tls_established(&mut self) {
        match self {
            SmtpClient::Login(m) => m.tls_established(),
            SmtpClient::Probe(m) => m.tls_established(),
        }
    }
}

/// A target driving a downstream machine with arbitrary bytes in arbitrary chunks,
/// answering logins arbitrarily. Checks: no panic, no endless loop, every write is
/// whole bounded lines, no login before a required STARTTLS, and `on_login`'s own.
///
/// `new` builds the machine from the drawn [`LocalTls`] (and may draw more from `u`);
/// `accept` is what `accept()` gets.
#[macro_export]
macro_rules! downstream_target {
    (
        new: |$tls:ident, $u:ident| $new:expr,
        accept: $caps:expr,
        max_out_line: $max_line:expr,
        crlf_lines: $crlf:expr,
        starttls: $starttls:literal,
        on_login: |$m:ident| $on_login:block $(,)?
    ) => {
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            use $crate::oauth_mail_proxy::proto::{DownstreamEvent, Interrupt, Io, LocalTls};
            let mut $u = $crate::arbitrary::Unstructured::new(data);
            let $tls = $crate::local_tls(&mut $u);
            let mut encrypted = $tls != LocalTls::StartTlsRequired;
            let mut $m = $new;
            let mut spins = 0u32;
            loop {
                spins += 1;
                assert!(spins < $crate::MAX_SPINS, "machine does not make progress");
                match $m.next() {
                    Ok(DownstreamEvent::Login(_creds)) => {
                        assert!(encrypted, "login accepted before the required {}", $starttls);
                        $on_login
                        match $crate::verdict(&mut $u) {
                            None => $m.accept($caps),
                            Some(r) => $m.reject(r),
                        }
                    }
                    Ok(DownstreamEvent::Done { .. }) => return,
                    Err(Interrupt::Io(Io::Write(bytes))) => {
                        $crate::check_downstream_write(&bytes, $max_line, $crlf);
                    }
                    Err(Interrupt::Io(Io::NeedInput)) => match $crate::chunk(&mut $u, 64) {
                        Some(chunk) => $m.feed(chunk),
                        None => return,
                    },
                    Err(Interrupt::Io(Io::StartTls)) => {
                        encrypted = true;
                        $m.tls_established();
                    }
                    Err(Interrupt::Io(Io::Close)) | Err(Interrupt::Error(_)) => return,
                }
            }
        });
    };
}

/// A target driving a client-role machine with arbitrary server bytes in arbitrary
/// chunks. Checks: no panic, no endless loop, bounded whole-line writes, one
/// handshake at most and only when STARTTLS is required, the event only over TLS
/// then, and `on_event`'s own.
///
/// `new` draws from `u` (see [`upstream_login`]) and gives the machine with its
/// [`UpstreamTls`] mode.
#[macro_export]
macro_rules! upstream_target {
    (
        new: |$u:ident| $new:expr,
        starttls: $starttls:literal,
        on_event: |$ev:pat_param| $on_event:block $(,)?
    ) => {
        $crate::libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            use $crate::oauth_mail_proxy::proto::{Interrupt, Io, UpstreamTls};
            let mut $u = $crate::arbitrary::Unstructured::new(data);
            let (tls, mut m): (UpstreamTls, _) = $new;
            let mut handshakes = 0;
            let mut spins = 0u32;
            loop {
                spins += 1;
                assert!(spins < $crate::MAX_SPINS, "machine does not make progress");
                match m.next() {
                    Ok($ev) => {
                        $on_event
                        assert!(
                            tls != UpstreamTls::StartTls || handshakes == 1,
                            "finished without {}",
                            $starttls
                        );
                        return;
                    }
                    Err(Interrupt::Io(Io::Write(bytes))) => {
                        assert!(bytes.ends_with(b"\r\n") && bytes.len() < 4096, "odd write");
                    }
                    Err(Interrupt::Io(Io::NeedInput)) => match $crate::chunk(&mut $u, 256) {
                        Some(chunk) => m.feed(chunk),
                        None => return,
                    },
                    Err(Interrupt::Io(Io::StartTls)) => {
                        handshakes += 1;
                        assert!(
                            handshakes == 1 && tls == UpstreamTls::StartTls,
                            "unexpected {}",
                            $starttls
                        );
                        m.tls_established();
                    }
                    Err(Interrupt::Io(Io::Close)) | Err(Interrupt::Error(_)) => return,
                }
            }
        });
    };
}
