//! Each protocol's pair of sans-I/O machines, adapted to the one session flow.

use crate::driver::Machine;
use crate::proto::imap::{self, ImapDownstream, ImapError, ImapUpstream, LoginRejection};
use crate::proto::{Interrupt, Limits, LocalTls, UpstreamAuthError, UpstreamLogin};

use super::{DownEvent, ListenerCtx};

/// The machine facing the legacy client.
pub trait Frontend: Machine + Send {
    fn event(ev: Self::Event) -> DownEvent;
    fn accept(&mut self, upstream_capabilities: Option<&str>);
    fn reject(&mut self, reason: LoginRejection);
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

pub struct Imap;

machine!(ImapDownstream, imap::DownstreamEvent, ImapError);
machine!(ImapUpstream, imap::UpstreamEvent, ImapError);

impl Frontend for ImapDownstream {
    fn event(ev: imap::DownstreamEvent) -> DownEvent {
        match ev {
            imap::DownstreamEvent::Login(c) => DownEvent::Login(c),
            imap::DownstreamEvent::Done { leftover } => DownEvent::Done { leftover },
        }
    }
    fn accept(&mut self, caps: Option<&str>) {
        ImapDownstream::accept(self, caps)
    }
    fn reject(&mut self, reason: LoginRejection) {
        ImapDownstream::reject(self, reason)
    }
}

impl Backend for ImapUpstream {
    fn logged_in(ev: imap::UpstreamEvent) -> (Option<String>, Vec<u8>) {
        let imap::UpstreamEvent::LoggedIn {
            capabilities,
            leftover,
        } = ev;
        (capabilities, leftover)
    }
    fn auth_error(e: &ImapError) -> Option<&UpstreamAuthError> {
        match e {
            ImapError::Auth(a) => Some(a),
            _ => None,
        }
    }
}

impl Protocol for Imap {
    type Down = ImapDownstream;
    type Up = ImapUpstream;
    async fn downstream(_lc: &ListenerCtx, tls: LocalTls, limits: Limits) -> ImapDownstream {
        ImapDownstream::new(tls, limits)
    }
    fn upstream(login: UpstreamLogin, limits: Limits, _hint: &str) -> ImapUpstream {
        ImapUpstream::new(login, limits)
    }
}
