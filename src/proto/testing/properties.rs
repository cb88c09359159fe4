//! Split invariance, for every machine (three downstream, four client-role) with
//! grammar-and-noise inputs: feeding a transcript in any split of reads gives the same
//! writes and events as feeding it whole. STARTTLS pipelining is the one exception, by
//! design (bytes pipelined behind STARTTLS are refused only when they arrive with it),
//! so these run without a required STARTTLS. The buffer bounds are in `bounds.rs`.

use proptest::prelude::*;

use super::{
    Downstream, Machine, Verdict, cut_at, drive_client, drive_downstream, drive_upstream, soup,
};
use crate::proto::imap::{ImapDownstream, ImapUpstream};
use crate::proto::pop3::{Pop3Downstream, Pop3Upstream};
use crate::proto::smtp::{SmtpDownstream, SmtpProbe, SmtpUpstream};
use crate::proto::{Limits, LocalTls, LoginRejection, UpstreamEvent, UpstreamTls};

/// Small limits, so that inputs reach them; many refusals allowed.
pub(super) const SMALL: Limits = Limits {
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

pub(super) const IMAP_CLIENT: &[&[u8]] = &[
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
pub(super) const POP3_CLIENT: &[&[u8]] = &[
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
pub(super) const SMTP_CLIENT: &[&[u8]] = &[
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
pub(super) const IMAP_SERVER: &[&[u8]] = &[
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
pub(super) const POP3_SERVER: &[&[u8]] = &[
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
pub(super) const SMTP_SERVER: &[&[u8]] = &[
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

pub(super) fn login(tls: UpstreamTls, bearer: bool) -> crate::proto::UpstreamLogin {
    super::upstream_login("mail.example.com", 993, tls, super::mechanism(bearer))
}

pub(super) fn smtp_downstream(tls: LocalTls, limits: Limits) -> SmtpDownstream {
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
