//! `--trace-protocol`: the pre-auth exchange with each client and each upstream
//! login, line by line, logged at info level under the `protocol` target, with every
//! secret redacted (the "email debug" of the peers).
//!
//! Safe by default: the [`Redactor`] (sans-I/O) shows only lines it knows to be
//! safe (server replies except SASL challenges; client commands such as
//! `CAPABILITY`, `EHLO`, `USER`), shows the user name but not the password of a
//! login (`a1 LOGIN alice@example.com [REDACTED]`, `PASS [REDACTED]`,
//! `AUTH XOAUTH2 [REDACTED]`), and replaces everything else (SASL responses,
//! literal bodies, unknown lines) with `[REDACTED 42 bytes]`.
//!
//! The hook is [`Traced`], a [`Machine`] wrapper: it sees exactly the bytes the
//! driver feeds the machine (read from the peer) and the bytes the machine asks the
//! driver to write. With tracing off ([`Tracer::start`] returns `None`) it adds
//! nothing.

mod redact;
#[cfg(test)]
mod tests;

pub use redact::{From, Redactor};

use crate::config::Protocol;
use crate::driver::Machine;
use crate::proto::{Interrupt, Io};

/// The log target of the protocol trace.
pub const TARGET: &str = "protocol";

/// Which part the proxy plays in the traced conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Downstream: the proxy serves a legacy client.
    Server,
    /// Upstream: the proxy logs in to the real server.
    Client,
}

/// Whether the protocol trace is on (the `protocol` target enabled at info).
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// One traced conversation. Boxed: an `Option<Tracer>` in every session's future
/// costs one pointer while tracing is off.
pub struct Tracer(Box<Conversation>);

/// A traced conversation's redactor and what the log lines name it.
struct Conversation {
    redactor: Redactor,
    role: Role,
    proto: Protocol,
    /// `client 127.0.0.1:50000` or `upstream imap.example.com:993`.
    peer: String,
}

impl Tracer {
    /// A tracer when the protocol trace is on, else `None` (and `peer` is not called).
    pub fn start(proto: Protocol, role: Role, peer: impl FnOnce() -> String) -> Option<Tracer> {
        enabled().then(|| {
            Tracer(Box::new(Conversation {
                redactor: Redactor::new(proto),
                role,
                proto,
                peer: peer(),
            }))
        })
    }

    /// Bytes read from the peer.
    pub fn received(&mut self, bytes: &[u8]) {
        let from = match self.0.role {
            Role::Server => From::Client,
            Role::Client => From::Server,
        };
        self.observe(from, bytes);
    }

    /// Bytes written to the peer.
    pub fn sent(&mut self, bytes: &[u8]) {
        let from = match self.0.role {
            Role::Server => From::Server,
            Role::Client => From::Client,
        };
        self.observe(from, bytes);
    }

    /// The connection switched to TLS.
    pub fn tls_established(&mut self) {
        self.log("--", "[TLS established]");
    }

    fn observe(&mut self, from: From, bytes: &[u8]) {
        let tag = match from {
            From::Client => "C:",
            From::Server => "S:",
        };
        for line in self.0.redactor.push(from, bytes) {
            self.log(tag, &line);
        }
    }

    fn log(&self, tag: &str, line: &str) {
        let c = &self.0;
        let side = match c.role {
            Role::Server => "downstream",
            Role::Client => "upstream",
        };
        tracing::info!(
            target: TARGET,
            proto = c.proto.name(),
            side,
            peer = %c.peer,
            "{tag} {line}"
        );
    }
}

/// A machine whose input and output go through a [`Tracer`] as well (when there is
/// one). Events and errors are the machine's own.
pub struct Traced<'a, M> {
    inner: &'a mut M,
    tracer: Option<&'a mut Tracer>,
}

impl<'a, M: Machine> Traced<'a, M> {
    pub fn new(inner: &'a mut M, tracer: Option<&'a mut Tracer>) -> Self {
        Traced { inner, tracer }
    }
}

impl<M: Machine> Machine for Traced<'_, M> {
    type Event = M::Event;
    type Error = M::Error;

    fn feed(&mut self, bytes: &[u8]) {
        if let Some(t) = self.tracer.as_deref_mut() {
            t.received(bytes);
        }
        self.inner.feed(bytes);
    }

    fn next(&mut self) -> Result<M::Event, Interrupt<M::Error>> {
        let r = self.inner.next();
        if let (Some(t), Err(Interrupt::Io(Io::Write(bytes)))) = (self.tracer.as_deref_mut(), &r) {
            t.sent(bytes);
        }
        r
    }

    fn tls_established(&mut self) {
        if let Some(t) = self.tracer.as_deref_mut() {
            t.tls_established();
        }
        self.inner.tls_established();
    }
}
