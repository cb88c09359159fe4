//! Test helpers shared by the three protocols' machine tests: one transcript driver
//! per side (downstream, upstream), the split-everywhere and chunking helpers, the
//! proptest "soup" strategy and the secret-in-`Debug` checks.
//!
//! The drivers are generic over [`Machine`] (feed / next / tls_established) and
//! [`Downstream`] (accept / reject), which every machine implements here.

use std::fmt::Debug;

use secrecy::ExposeSecret;

use super::imap::{ImapDownstream, ImapError, ImapUpstream};
use super::pop3::{Pop3Downstream, Pop3Error, Pop3Upstream};
use super::smtp::{SmtpDownstream, SmtpError, SmtpProbe, SmtpUpstream};
use super::{
    DownstreamEvent, Interrupt, Io, Limits, LocalTls, LoginRejection, UpstreamEvent, smtp,
};

mod bounds;
mod properties;
mod reads;
mod upstream;

pub(crate) use bounds::Buffered;
pub(crate) use reads::*;
pub(crate) use upstream::*;

/// A sans-I/O machine, as the test drivers see it.
pub(crate) trait Machine {
    type Event;
    type Error;
    fn feed(&mut self, bytes: &[u8]);
    fn next(&mut self) -> Result<Self::Event, Interrupt<Self::Error>>;
    fn tls_established(&mut self);
}

/// A machine facing the legacy client.
pub(crate) trait Downstream: Machine<Event = DownstreamEvent> {
    fn accept(&mut self, upstream_capabilities: Option<&str>);
    fn reject(&mut self, reason: LoginRejection);
}

macro_rules! machine {
    ($ty:ty, $event:ty, $error:ty) => {
        impl Machine for $ty {
            type Event = $event;
            type Error = $error;
            fn feed(&mut self, bytes: &[u8]) {
                <$ty>::feed(self, bytes)
            }
            fn next(&mut self) -> Result<$event, Interrupt<$error>> {
                <$ty>::next(self)
            }
            fn tls_established(&mut self) {
                <$ty>::tls_established(self)
            }
        }
    };
}

macro_rules! downstream {
    ($ty:ty, $error:ty) => {
        machine!($ty, DownstreamEvent, $error);
        impl Downstream for $ty {
            fn accept(&mut self, caps: Option<&str>) {
                <$ty>::accept(self, caps)
            }
            fn reject(&mut self, reason: LoginRejection) {
                <$ty>::reject(self, reason)
            }
        }
    };
}

downstream!(ImapDownstream, ImapError);
downstream!(Pop3Downstream, Pop3Error);
downstream!(SmtpDownstream, SmtpError);
machine!(ImapUpstream, UpstreamEvent, ImapError);
machine!(Pop3Upstream, UpstreamEvent, Pop3Error);
machine!(SmtpUpstream, UpstreamEvent, SmtpError);
machine!(SmtpProbe, smtp::ProbeEvent, SmtpError);

/// What the session decides for each login, in order.
#[derive(Clone)]
pub(crate) enum Verdict {
    /// `accept()` with these upstream capabilities.
    Accept(Option<&'static str>),
    Reject(LoginRejection),
}

/// What a downstream transcript saw besides the bytes written.
#[derive(Debug, PartialEq)]
pub(crate) enum Ev<E> {
    Login(Option<String>, String, String),
    Done(Vec<u8>),
    StartTls,
    Close,
    Error(E),
}

/// A login without authzid.
pub(crate) fn login<E>(user: &str, pass: &str) -> Ev<E> {
    Ev::Login(None, user.into(), pass.into())
}

/// A tiny driver: feeds `chunks` whenever the machine needs input, collects what it
/// writes, answers logins from `verdicts` (then with `accept(default_caps)`), and
/// "handshakes" on StartTls.
pub(crate) fn drive_downstream<M: Downstream>(
    m: &mut M,
    chunks: &[&[u8]],
    verdicts: &[Verdict],
    default_caps: Option<&'static str>,
) -> (Vec<u8>, Vec<Ev<M::Error>>) {
    let mut chunks = chunks.iter();
    let mut verdicts = verdicts.iter().cloned();
    let (mut out, mut evs) = (Vec::new(), Vec::new());
    loop {
        match m.next() {
            Ok(DownstreamEvent::Login(c)) => {
                let pass = c.password.expose_secret().to_owned();
                evs.push(Ev::Login(c.authzid, c.username, pass));
                match verdicts.next().unwrap_or(Verdict::Accept(default_caps)) {
                    Verdict::Accept(caps) => m.accept(caps),
                    Verdict::Reject(r) => m.reject(r),
                }
            }
            Ok(DownstreamEvent::Done { mut leftover }) => {
                // what the driver reads later is spliced after the leftover
                leftover.extend(chunks.by_ref().copied().flatten());
                evs.push(Ev::Done(leftover));
                break;
            }
            Err(Interrupt::Io(Io::Write(b))) => out.extend(b),
            Err(Interrupt::Io(Io::NeedInput)) => match chunks.next() {
                Some(c) => m.feed(c),
                None => break,
            },
            Err(Interrupt::Io(Io::StartTls)) => {
                evs.push(Ev::StartTls);
                m.tls_established();
            }
            Err(Interrupt::Io(Io::Close)) => {
                evs.push(Ev::Close);
                break;
            }
            Err(Interrupt::Error(e)) => {
                evs.push(Ev::Error(e));
                break;
            }
        }
    }
    (out, evs)
}

/// With STARTTLS required, no login may come before the handshake.
pub(crate) fn no_login_before_starttls<E: PartialEq>(evs: &[Ev<E>]) -> bool {
    let login = evs.iter().position(|e| matches!(e, Ev::Login(..)));
    let tls = evs.iter().position(|e| *e == Ev::StartTls);
    login.is_none() || tls < login
}

/// Feeds a downstream machine `input` and steps it until it stops writing: that step
/// must be the login, and the `Debug` of every step and of the machine shows it but
/// none of `secrets`. Returns the number of steps.
pub(crate) fn assert_secrets_hidden<M: Downstream + Debug>(
    m: &mut M,
    input: &[u8],
    secrets: &[&str],
) -> usize
where
    M::Error: Debug,
{
    m.feed(input);
    let mut dump = String::new();
    let mut steps = 0;
    loop {
        let step = m.next();
        steps += 1;
        dump.push_str(&format!("{step:?} {m:?}\n"));
        if !matches!(step, Err(Interrupt::Io(Io::Write(_)))) {
            assert!(matches!(step, Ok(DownstreamEvent::Login(_))), "{dump}");
            break;
        }
    }
    assert!(dump.contains("Login("), "{dump}");
    for secret in secrets {
        assert!(!dump.contains(secret), "{dump}");
    }
    steps
}

/// The bytes of `parts`, as a string.
pub(crate) fn text(parts: &[&[u8]]) -> String {
    String::from_utf8(parts.concat()).unwrap()
}

/// Limits that let a transcript run many refusals.
pub(crate) fn lenient() -> Limits {
    Limits {
        max_errors: 100,
        max_auth_failures: 100,
        ..Limits::default()
    }
}

/// `LocalTls` from a proptest index (0..3).
pub(crate) fn local_tls(i: u8) -> LocalTls {
    [LocalTls::None, LocalTls::StartTlsRequired, LocalTls::Active][usize::from(i)]
}

/// Feeds `input` in one read and steps a downstream machine up to its login event:
/// returns what it wrote before it (none of the commands pipelined behind the login
/// may have been answered yet). Panics if no login comes.
pub(crate) fn written_before_login<M: Downstream>(m: &mut M, input: &[u8]) -> Vec<u8>
where
    M::Error: Debug,
{
    m.feed(input);
    let mut out = Vec::new();
    loop {
        match m.next() {
            Ok(DownstreamEvent::Login(_)) => return out,
            Err(Interrupt::Io(Io::Write(b))) => out.extend(b),
            other => panic!(
                "no login: {other:?} after {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Answers the pending login with `verdict`, then runs the machine on what it
/// already holds: what it wrote and what happened (a `Done` there is the only way
/// pipelined bytes reach the upstream).
pub(crate) fn after_verdict<M: Downstream>(
    m: &mut M,
    verdict: Verdict,
) -> (String, Vec<Ev<M::Error>>) {
    match verdict {
        Verdict::Accept(caps) => m.accept(caps),
        Verdict::Reject(r) => m.reject(r),
    }
    let (out, evs) = drive_downstream(m, &[], &[], None);
    (String::from_utf8(out).unwrap(), evs)
}
