//! Bounded buffers, for every machine: while oversized input arrives (over-long lines,
//! literals and SASL responses, in reads of up to [`CHUNK`] bytes, fed only when the
//! machine asks), the input buffer never holds more than the machine's limit plus one
//! read, and its allocation stays within the next power of two of that.
//!
//! Each machine's [`Buffered`] impl lives next to its own tests (which see its fields).

use proptest::prelude::*;

use super::properties::{
    IMAP_CLIENT, IMAP_SERVER, POP3_CLIENT, POP3_SERVER, SMALL, SMTP_CLIENT, SMTP_SERVER, login,
    smtp_downstream,
};
use super::{Downstream, Machine};
use crate::proto::imap::{ImapDownstream, ImapUpstream};
use crate::proto::line::InputBuffer;
use crate::proto::pop3::{Pop3Downstream, Pop3Upstream};
use crate::proto::smtp::{SmtpProbe, SmtpUpstream};
use crate::proto::{DownstreamEvent, Interrupt, Io, LocalTls, LoginRejection, UpstreamTls};

/// A machine's input buffer, for the bound checks.
pub(crate) trait Buffered {
    fn input(&self) -> &InputBuffer;
}

/// The largest read the bound checks feed.
const CHUNK: usize = 512;

/// Runs `m` over `input` in reads of `chunk` bytes (only when it asks), refusing
/// every login; after every step its buffer must hold at most `limit + chunk` bytes
/// in at most `cap(limit + chunk)` of allocation. Returns the largest length seen.
pub(crate) fn bounded<M: Machine + Buffered>(
    m: &mut M,
    input: &[u8],
    chunk: usize,
    limit: usize,
    mut on_event: impl FnMut(&mut M, M::Event) -> bool,
) -> Result<usize, TestCaseError> {
    let bound = limit + chunk;
    let cap = bound.next_power_of_two().max(1024);
    let mut reads = input.chunks(chunk);
    let mut most = 0;
    let mut check = |m: &M| {
        let (len, capacity) = (m.input().len(), m.input().capacity());
        most = most.max(len);
        prop_assert!(len <= bound, "{} bytes buffered, limit {}", len, bound);
        prop_assert!(
            capacity <= cap,
            "{} bytes allocated, limit {}",
            capacity,
            cap
        );
        Ok(())
    };
    for _ in 0..1_000_000 {
        let step = m.next();
        check(m)?;
        match step {
            Ok(ev) => {
                if !on_event(m, ev) {
                    break;
                }
            }
            Err(Interrupt::Io(Io::NeedInput)) => match reads.next() {
                Some(r) => {
                    m.feed(r);
                    check(m)?;
                }
                None => break,
            },
            Err(Interrupt::Io(Io::Write(_))) => {}
            Err(Interrupt::Io(Io::StartTls)) => m.tls_established(),
            Err(Interrupt::Io(Io::Close)) | Err(Interrupt::Error(_)) => break,
        }
    }
    Ok(most)
}

/// [`bounded`] for a downstream machine: logins are refused.
fn bounded_downstream<M: Downstream + Buffered>(
    m: &mut M,
    input: &[u8],
    limit: usize,
) -> Result<usize, TestCaseError> {
    bounded(m, input, CHUNK, limit, |m, ev| match ev {
        DownstreamEvent::Login(_) => {
            m.reject(LoginRejection::BadCredentials);
            true
        }
        DownstreamEvent::Done { .. } => false,
    })
}

/// Pieces repeated to oversized runs: `(piece, times)`.
fn big(pieces: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    let run = (proptest::sample::select(pieces), 1usize..400);
    proptest::collection::vec(run, 1..12).prop_map(|runs| {
        runs.iter()
            .map(|(p, n)| p.repeat(*n))
            .collect::<Vec<_>>()
            .concat()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A LOGIN frame holds at most three lines and two literals.
    #[test]
    fn imap_downstream_buffer_is_bounded(input in big(IMAP_CLIENT), tls in 0u8..3) {
        let mut m = ImapDownstream::new(super::local_tls(tls), SMALL);
        let limit = (3 * SMALL.max_line + 2 * SMALL.max_literal).max(SMALL.max_sasl);
        bounded_downstream(&mut m, &input, limit)?;
    }

    #[test]
    fn pop3_downstream_buffer_is_bounded(input in big(POP3_CLIENT), tls in 0u8..3) {
        let mut m = Pop3Downstream::new(super::local_tls(tls), SMALL);
        bounded_downstream(&mut m, &input, SMALL.max_line.max(SMALL.max_sasl))?;
    }

    #[test]
    fn smtp_downstream_buffer_is_bounded(input in big(SMTP_CLIENT), tls in 0u8..3) {
        let mut m = smtp_downstream(super::local_tls(tls), SMALL);
        bounded_downstream(&mut m, &input, SMALL.max_line.max(SMALL.max_sasl))?;
    }
}

/// Server input with, now and then, a run of 40 to 140 KiB without a line end (server
/// lines may be 64 KiB long).
fn huge(pieces: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    (
        big(pieces),
        proptest::option::of(40_000usize..140_000),
        big(pieces),
    )
        .prop_map(|(a, long, b)| [a, vec![b'x'; long.unwrap_or(0)], b].concat())
}

/// Client-role machines stop at their event.
fn stop<M, E>(_: &mut M, _: E) -> bool {
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn imap_upstream_buffer_is_bounded(input in huge(IMAP_SERVER), tls in 0u8..3, bearer: bool) {
        let l = login(super::upstream_tls(tls), bearer);
        let mut m = ImapUpstream::new(l, SMALL);
        bounded(&mut m, &input, CHUNK, crate::proto::imap::UPSTREAM_MAX_LINE, stop)?;
    }

    #[test]
    fn pop3_upstream_buffer_is_bounded(input in huge(POP3_SERVER), tls in 0u8..3, bearer: bool) {
        let l = login(super::upstream_tls(tls), bearer);
        let mut m = Pop3Upstream::new(l, SMALL);
        bounded(&mut m, &input, CHUNK, crate::proto::pop3::UPSTREAM_MAX_LINE, stop)?;
    }

    #[test]
    fn smtp_upstream_buffer_is_bounded(input in huge(SMTP_SERVER), tls in 0u8..3, bearer: bool) {
        let l = login(super::upstream_tls(tls), bearer);
        let mut m = SmtpUpstream::new(l, SMALL, "c.example");
        bounded(&mut m, &input, CHUNK, crate::proto::smtp::UPSTREAM_MAX_LINE, stop)?;
    }

    #[test]
    fn smtp_probe_buffer_is_bounded(input in huge(SMTP_SERVER), tls in 0u8..3) {
        let mut m = SmtpProbe::new(super::upstream_tls(tls), SMALL, "c.example");
        bounded(&mut m, &input, CHUNK, crate::proto::smtp::UPSTREAM_MAX_LINE, stop)?;
    }
}

/// The bound checks are not vacuous: a line without end fills each buffer up to its
/// limit (and no further).
#[test]
fn endless_lines_fill_buffers_to_the_limit() {
    let junk = vec![b'x'; 200_000];
    let tls = LocalTls::Active;
    let limit = SMALL.max_line;
    let check = |most: Result<usize, TestCaseError>, limit: usize| {
        let most = most.unwrap();
        assert!(
            (limit..=limit + CHUNK).contains(&most),
            "{most} for {limit}"
        );
    };
    check(
        bounded_downstream(&mut ImapDownstream::new(tls, SMALL), &junk, limit),
        limit,
    );
    check(
        bounded_downstream(&mut Pop3Downstream::new(tls, SMALL), &junk, limit),
        limit,
    );
    check(
        bounded_downstream(&mut smtp_downstream(tls, SMALL), &junk, limit),
        limit,
    );
    let l = login(UpstreamTls::Implicit, false);
    let limit = crate::proto::imap::UPSTREAM_MAX_LINE;
    check(
        bounded(
            &mut ImapUpstream::new(l.clone(), SMALL),
            &junk,
            CHUNK,
            limit,
            stop,
        ),
        limit,
    );
    check(
        bounded(
            &mut Pop3Upstream::new(l.clone(), SMALL),
            &junk,
            CHUNK,
            limit,
            stop,
        ),
        limit,
    );
    let mut m = SmtpUpstream::new(l, SMALL, "c.example");
    check(bounded(&mut m, &junk, CHUNK, limit, stop), limit);
    let mut m = SmtpProbe::new(UpstreamTls::Implicit, SMALL, "c.example");
    check(bounded(&mut m, &junk, CHUNK, limit, stop), limit);
    // A LOGIN with two literals holds three lines and two literals at once.
    let login = b"a LOGIN {48}\r\n012345678901234567890123456789012345678901234567 {48}\r\n";
    let mut input = login.to_vec();
    input.extend([b'y'; 48]);
    let mut m = ImapDownstream::new(tls, SMALL);
    let most = bounded(&mut m, &input, 1, 3 * 64 + 2 * 48, |_, _| false).unwrap();
    assert_eq!(most, input.len());
}
