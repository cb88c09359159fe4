//! Properties every machine has, checked for all of them (three downstream, four
//! client-role) with grammar-and-noise inputs:
//!
//! * **split invariance**: feeding a transcript in any split of reads gives the same
//!   writes and events as feeding it whole (STARTTLS pipelining is the one exception,
//!   by design, so these run without a required STARTTLS);
//! * **bounded buffers**: while oversized input arrives (over-long lines, literals and
//!   SASL responses, in reads of up to [`CHUNK`] bytes, fed only when the machine asks),
//!   the input buffer never holds more than the machine's limit plus one read, and its
//!   allocation stays within the next power of two of that.
//!
//! Each machine's [`Buffered`] impl lives next to its own tests (which see its fields).

use proptest::prelude::*;

use super::{
    Downstream, Machine, Verdict, cut_at, drive_client, drive_downstream, drive_upstream, soup,
};
use crate::proto::imap::{ImapDownstream, ImapUpstream};
use crate::proto::line::InputBuffer;
use crate::proto::pop3::{Pop3Downstream, Pop3Upstream};
use crate::proto::smtp::{SmtpDownstream, SmtpProbe, SmtpUpstream};
use crate::proto::{
    DownstreamEvent, Interrupt, Io, Limits, LocalTls, LoginRejection, UpstreamEvent, UpstreamTls,
};

/// A machine's input buffer, for the bound checks.
pub(crate) trait Buffered {
    fn input(&self) -> &InputBuffer;
}

/// The largest read the bound checks feed.
const CHUNK: usize = 512;

/// Small limits, so that inputs reach them; many refusals allowed.
const SMALL: Limits = Limits {
    max_line: 64,
    max_literal: 48,
    max_sasl: 96,
    max_auth_failures: 1000,
    max_errors: 1000,
};

/// The answers to logins in the split-invariance runs: two refusals, then accept.
fn verdicts() -> Vec<Verdict> {
    vec![
        Verdict::Reject(LoginRejection::BadCredentials),
        Verdict::Reject(LoginRejection::Unavailable("later".into())),
        Verdict::Accept(Some("IMAP4rev1 IDLE")),
    ]
}

/// Whole and split runs of a downstream machine agree.
fn same_downstream<M: Downstream>(
    new: impl Fn() -> M,
    input: &[u8],
    cuts: Vec<usize>,
) -> Result<(), TestCaseError>
where
    M::Error: PartialEq + std::fmt::Debug,
{
    let whole = drive_downstream(&mut new(), &[input], &verdicts(), None);
    let split = drive_downstream(&mut new(), &cut_at(input, cuts), &verdicts(), None);
    prop_assert_eq!(
        String::from_utf8_lossy(&split.0),
        String::from_utf8_lossy(&whole.0)
    );
    prop_assert_eq!(split.1, whole.1);
    Ok(())
}

/// Whole and split runs of a client-role machine agree: the same writes and the same
/// ending (bytes left unread after it are not compared; see [`same_upstream`]).
fn same_client<M: Machine>(
    new: impl Fn() -> M,
    input: &[u8],
    cuts: Vec<usize>,
) -> Result<(), TestCaseError>
where
    M::Event: PartialEq + std::fmt::Debug,
    M::Error: PartialEq + std::fmt::Debug,
{
    let (out, end, _) = drive_client(&mut new(), &[input]);
    let (split_out, split_end, _) = drive_client(&mut new(), &cut_at(input, cuts));
    prop_assert_eq!((split_out, split_end), (out, end));
    Ok(())
}

/// [`same_client`] for an upstream login machine, whose leftover after the login
/// (with the reads not yet taken) must be the same too.
fn same_upstream<M: Machine<Event = UpstreamEvent>>(
    new: impl Fn() -> M,
    input: &[u8],
    cuts: Vec<usize>,
) -> Result<(), TestCaseError>
where
    M::Error: PartialEq + std::fmt::Debug,
{
    let whole = drive_upstream(&mut new(), &[input]);
    let split = drive_upstream(&mut new(), &cut_at(input, cuts));
    prop_assert_eq!(split, whole);
    Ok(())
}

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

const IMAP_CLIENT: &[&[u8]] = &[
    b"a ",
    b"LOGIN ",
    b"AUTHENTICATE PLAIN",
    b" AGEAYg==",
    b"CAPABILITY",
    b"NOOP",
    b"ID NIL",
    b"STARTTLS",
    b"LOGOUT",
    b"SELECT x",
    b"{3}\r\n",
    b"{3+}\r\n",
    b"{70+}\r\n",
    b"{9}\r\n",
    b"\"q\\\"",
    b"*",
    b"u p",
    b"\r\n",
    b"\n",
];
const POP3_CLIENT: &[&[u8]] = &[
    b"USER u",
    b"PASS p w",
    b"AUTH PLAIN",
    b" AHUAcA==",
    b"AUTH LOGIN",
    b"CAPA",
    b"STAT",
    b"STLS",
    b"QUIT",
    b"APOP u d",
    b"*",
    b"=",
    b" ",
    b"\r\n",
    b"\n",
];
const SMTP_CLIENT: &[&[u8]] = &[
    b"EHLO c.example",
    b"HELO c",
    b"AUTH PLAIN",
    b" AHUAcA==",
    b"AUTH LOGIN",
    b" dQ==",
    b"cA==",
    b"MAIL FROM:<a@b>",
    b"RCPT TO:<c@d>",
    b"BDAT 5",
    b"BDAT 100 LAST",
    b"DATA",
    b"STARTTLS",
    b"NOOP",
    b"RSET",
    b"QUIT",
    b"*",
    b"\r\n",
    b"\n",
];
const IMAP_SERVER: &[&[u8]] = &[
    b"* OK ",
    b"[CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER] ",
    b"* BYE ",
    b"A1 OK ",
    b"A2 OK ",
    b"A1 NO ",
    b"A2 NO [UNAVAILABLE] ",
    b"A1 BAD ",
    b"+ ",
    b"eyJzdGF0dXMiOiI0MDEifQ==",
    b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2",
    b"{5}\r\n",
    b"x",
    b"\r\n",
];
const POP3_SERVER: &[&[u8]] = &[
    b"+OK ",
    b"-ERR ",
    b"[SYS/TEMP] ",
    b"[AUTH] ",
    b"SASL XOAUTH2 OAUTHBEARER",
    b"STLS",
    b".",
    b"+ eyJzdGF0dXMiOiI0MDEifQ==",
    b"x",
    b"\r\n",
];
const SMTP_SERVER: &[&[u8]] = &[
    b"220 ",
    b"220-",
    b"250-",
    b"250 ",
    b"AUTH XOAUTH2 OAUTHBEARER",
    b"STARTTLS",
    b"235 ",
    b"334 eyJzdGF0dXMiOiI0MDEifQ==",
    b"454 4.7.0 ",
    b"535 5.7.8 ",
    b"221 ",
    b"501 ",
    b"x",
    b"\r\n",
];

fn downstream_tls(active: bool) -> LocalTls {
    if active {
        LocalTls::Active
    } else {
        LocalTls::None
    }
}

fn upstream_tls(implicit: bool) -> UpstreamTls {
    if implicit {
        UpstreamTls::Implicit
    } else {
        UpstreamTls::None
    }
}

fn login(tls: UpstreamTls, bearer: bool) -> crate::proto::UpstreamLogin {
    super::upstream_login("mail.example.com", 993, tls, super::mechanism(bearer))
}

fn smtp_downstream(tls: LocalTls, limits: Limits) -> SmtpDownstream {
    SmtpDownstream::new(
        tls,
        limits,
        "mx.example",
        vec!["PIPELINING".into(), "CHUNKING".into()],
    )
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0usize..2000, 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn imap_downstream_split_invariance(input in soup(IMAP_CLIENT), cuts in cuts(), active: bool) {
        let tls = downstream_tls(active);
        same_downstream(|| ImapDownstream::new(tls, SMALL), &input, cuts)?;
    }

    #[test]
    fn pop3_downstream_split_invariance(input in soup(POP3_CLIENT), cuts in cuts(), active: bool) {
        let tls = downstream_tls(active);
        same_downstream(|| Pop3Downstream::new(tls, SMALL), &input, cuts)?;
    }

    #[test]
    fn smtp_downstream_split_invariance(input in soup(SMTP_CLIENT), cuts in cuts(), active: bool) {
        let tls = downstream_tls(active);
        same_downstream(|| smtp_downstream(tls, SMALL), &input, cuts)?;
    }

    #[test]
    fn imap_upstream_split_invariance(input in soup(IMAP_SERVER), cuts in cuts(), implicit: bool, bearer: bool) {
        let l = login(upstream_tls(implicit), bearer);
        same_upstream(|| ImapUpstream::new(l.clone(), SMALL), &input, cuts)?;
    }

    #[test]
    fn pop3_upstream_split_invariance(input in soup(POP3_SERVER), cuts in cuts(), implicit: bool, bearer: bool) {
        let l = login(upstream_tls(implicit), bearer);
        same_upstream(|| Pop3Upstream::new(l.clone(), SMALL), &input, cuts)?;
    }

    #[test]
    fn smtp_upstream_split_invariance(input in soup(SMTP_SERVER), cuts in cuts(), implicit: bool, bearer: bool) {
        let l = login(upstream_tls(implicit), bearer);
        same_upstream(|| SmtpUpstream::new(l.clone(), SMALL, "c.example"), &input, cuts)?;
    }

    #[test]
    fn smtp_probe_split_invariance(input in soup(SMTP_SERVER), cuts in cuts(), implicit: bool) {
        let tls = upstream_tls(implicit);
        same_client(|| SmtpProbe::new(tls, SMALL, "c.example"), &input, cuts)?;
    }
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
