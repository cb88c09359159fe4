//! Each protocol's pair of sans-I/O machines, adapted to the one session flow.

use crate::driver::Machine;
use crate::proto::LoginRejection;
use crate::proto::imap::{self, ImapDownstream, ImapError, ImapUpstream};
use crate::proto::pop3::{self, Pop3Downstream, Pop3Error, Pop3Upstream};
use crate::proto::smtp::{self, SmtpDownstream, SmtpError, SmtpProbe, SmtpUpstream};
use crate::proto::{Interrupt, Limits, LocalTls, UpstreamAuthError, UpstreamLogin};

use super::{DownEvent, ListenerCtx};

/// The machine facing the legacy client.
pub trait Frontend: Machine + Send {
    fn event(ev: Self::Event) -> DownEvent;
    fn accept(&mut self, upstream_capabilities: Option<&str>);
    fn reject(&mut self, reason: LoginRejection);
    /// The pre-login limit that closed the connection, if one did.
    fn close_reason(&self) -> Option<crate::proto::CloseReason>;
}

/// The machine facing the real server.
pub trait Backend: Machine + Send {
    /// The post-login capabilities and the bytes the server sent after its OK.
    fn logged_in(ev: Self::Event) -> (Option<String>, Vec<u8>);
    /// The upstream authentication failure inside an error, if it is one.
    fn auth_error(e: &Self::Error) -> Option<&UpstreamAuthError>;
}

/// A protocol: how to build its machines for one connection.
pub trait Protocol: Send + Sync + 'static {
    type Down: Frontend;
    type Up: Backend;
    /// Which protocol this is (for the protocol trace).
    const KIND: crate::config::Protocol;
    /// The downstream machine for a new connection on `lc`.
    fn downstream(
        lc: &ListenerCtx,
        tls: LocalTls,
        limits: Limits,
    ) -> impl Future<Output = Self::Down> + Send;
    /// What the upstream login needs from the downstream session (SMTP: the
    /// client's EHLO domain); empty for other protocols.
    fn upstream_hint(_down: &Self::Down) -> String {
        String::new()
    }
    fn upstream(login: UpstreamLogin, limits: Limits, hint: &str) -> Self::Up;
}

/// Implements [`Machine`] for a machine with inherent feed/next/tls_established.
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

/// The Frontend/Backend impls for a protocol module whose machines share IMAP's shape
/// (`DownstreamEvent::{Login, Done}`, `UpstreamEvent::LoggedIn`, `Error::Auth`).
macro_rules! protocol_machines {
    ($m:ident, $down:ident, $up:ident, $err:ident) => {
        machine!($down, $m::DownstreamEvent, $err);
        machine!($up, $m::UpstreamEvent, $err);

        impl Frontend for $down {
            fn event(ev: $m::DownstreamEvent) -> DownEvent {
                match ev {
                    $m::DownstreamEvent::Login(c) => DownEvent::Login(c),
                    $m::DownstreamEvent::Done { leftover } => DownEvent::Done { leftover },
                }
            }
            fn accept(&mut self, caps: Option<&str>) {
                $down::accept(self, caps)
            }
            fn reject(&mut self, reason: LoginRejection) {
                $down::reject(self, reason)
            }
            fn close_reason(&self) -> Option<crate::proto::CloseReason> {
                $down::close_reason(self)
            }
        }

        impl Backend for $up {
            fn logged_in(ev: $m::UpstreamEvent) -> (Option<String>, Vec<u8>) {
                let $m::UpstreamEvent::LoggedIn {
                    capabilities,
                    leftover,
                } = ev;
                (capabilities, leftover)
            }
            fn auth_error(e: &$err) -> Option<&UpstreamAuthError> {
                match e {
                    $err::Auth(a) => Some(a),
                    _ => None,
                }
            }
        }
    };
}

protocol_machines!(imap, ImapDownstream, ImapUpstream, ImapError);
protocol_machines!(pop3, Pop3Downstream, Pop3Upstream, Pop3Error);
protocol_machines!(smtp, SmtpDownstream, SmtpUpstream, SmtpError);
machine!(SmtpProbe, smtp::ProbeEvent, SmtpError);

pub struct Imap;

impl Protocol for Imap {
    const KIND: crate::config::Protocol = crate::config::Protocol::Imap;
    type Down = ImapDownstream;
    type Up = ImapUpstream;
    async fn downstream(_lc: &ListenerCtx, tls: LocalTls, limits: Limits) -> ImapDownstream {
        ImapDownstream::new(tls, limits)
    }
    fn upstream(login: UpstreamLogin, limits: Limits, _hint: &str) -> ImapUpstream {
        ImapUpstream::new(login, limits)
    }
}

pub struct Pop3;

impl Protocol for Pop3 {
    const KIND: crate::config::Protocol = crate::config::Protocol::Pop3;
    type Down = Pop3Downstream;
    type Up = Pop3Upstream;
    async fn downstream(_lc: &ListenerCtx, tls: LocalTls, limits: Limits) -> Pop3Downstream {
        Pop3Downstream::new(tls, limits)
    }
    fn upstream(login: UpstreamLogin, limits: Limits, _hint: &str) -> Pop3Upstream {
        Pop3Upstream::new(login, limits)
    }
}

pub struct Smtp;

/// Host name in our SMTP greeting and EHLO reply.
const SMTP_HOSTNAME: &str = "localhost";
/// EHLO domain the proxy uses upstream when the client gave none.
const SMTP_DEFAULT_DOMAIN: &str = "localhost";

impl Protocol for Smtp {
    const KIND: crate::config::Protocol = crate::config::Protocol::Smtp;
    type Down = SmtpDownstream;
    type Up = SmtpUpstream;
    async fn downstream(lc: &ListenerCtx, tls: LocalTls, limits: Limits) -> SmtpDownstream {
        let extensions = super::smtp_probe::extensions(lc, limits).await;
        SmtpDownstream::new(tls, limits, SMTP_HOSTNAME, extensions)
    }
    fn upstream_hint(down: &SmtpDownstream) -> String {
        down.client_domain()
            .unwrap_or(SMTP_DEFAULT_DOMAIN)
            .to_string()
    }
    fn upstream(login: UpstreamLogin, limits: Limits, hint: &str) -> SmtpUpstream {
        SmtpUpstream::new(login, limits, hint)
    }
}
