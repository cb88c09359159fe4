//! The pre-login machine facing the legacy client (SMTP submission, server role).
//!
//! greeting → EHLO → (STARTTLS → EHLO again) → AUTH PLAIN / LOGIN (`334` dance) →
//! [`DownstreamEvent::Login`] → the session calls [`SmtpDownstream::accept`] or
//! [`SmtpDownstream::reject`] → `235` / `535` / `454` → [`DownstreamEvent::Done`]
//! with the bytes the client already pipelined (e.g. its `MAIL FROM`).
//!
//! **EHLO.** The reply lists the upstream's extensions (learned by
//! [`super::SmtpProbe`]) without its `AUTH` and `STARTTLS` lines, plus ours: `AUTH
//! PLAIN LOGIN` when the client may authenticate (TLS active, or a listener without
//! STARTTLS) and `STARTTLS` while a STARTTLS listener is still in cleartext. After the
//! splice the client talks to the upstream, so everything else it was promised
//! (PIPELINING, SIZE, CHUNKING...) is really there.
//!
//! **Framing.** Commands and SASL responses are framed line by line
//! ([`find_line`](crate::proto::line::find_line): at most `limits.max_line` bytes per
//! command, `limits.max_sasl` per SASL response). A refused `BDAT` is followed by its
//! chunk at once (the client does not wait): the chunk is skipped, never read as
//! commands, and a chunk larger than `limits.max_literal` closes the connection.
//!
//! **Limits.** Every refusal the machine makes itself (`5xx` to a command, a cancelled
//! or malformed AUTH) counts towards `max_errors`; every `reject()` counts towards
//! `max_auth_failures`. Reaching either ends with a `421` and [`Io::Close`]. STARTTLS
//! resets the protocol state (RFC 3207: the client must EHLO again), not the counters.

use self::respond::Action;
use super::encode;
use super::types::{DownstreamEvent, SmtpError};
use crate::proto::line::InputBuffer;
use crate::proto::preauth::{Outbox, Step};
use crate::proto::{Interrupt, Io, Limits, LocalTls, LoginRejection};

/// The sans-I/O SMTP server side up to the end of AUTH.
#[derive(Debug)]
pub struct SmtpDownstream {
    tls: LocalTls,
    limits: Limits,
    hostname: String,
    /// The upstream's extensions without AUTH and STARTTLS, sanitized.
    extensions: Vec<String>,
    buf: InputBuffer,
    state: State,
    /// Steps to hand out; refusal and failure counts.
    out: Outbox<SmtpError>,
    /// The EHLO/HELO argument of the current TLS phase.
    client_domain: Option<String>,
}

/// Where an AUTH exchange stands after a `334`.
#[derive(Debug)]
enum Sasl {
    /// `334 ` sent; the PLAIN response comes next.
    Plain,
    /// `334 VXNlcm5hbWU6` sent.
    LoginUsername,
    /// `334 UGFzc3dvcmQ6` sent.
    LoginPassword { username: String },
}

#[derive(Debug)]
enum State {
    Greeting,
    Command,
    /// Waiting for the client's response to a `334`.
    Sasl(Sasl),
    /// Dropping the rest of an over-long SASL response line.
    Discard,
    /// Skipping the chunk of a refused BDAT; then `reply`.
    Skip {
        remaining: u64,
        reply: Vec<u8>,
    },
    /// Login event handed out; waiting for accept() / reject().
    Decision,
    TlsPending,
    Finished,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fine,
    Refusal,
}

/// Fallback when the configured host name has nothing printable.
const DEFAULT_HOSTNAME: &str = "oauth-mail-proxy";

impl SmtpDownstream {
    /// `extensions`: the upstream's EHLO keywords learned by a probe (e.g.
    /// `["SIZE 35882577", "PIPELINING", "AUTH PLAIN XOAUTH2", "STARTTLS"]`); the
    /// machine drops the upstream's AUTH and STARTTLS lines (and any line unfit to
    /// repeat) and adds its own `AUTH PLAIN LOGIN` and `STARTTLS` as the TLS state
    /// allows.
    pub fn new(tls: LocalTls, limits: Limits, hostname: &str, extensions: Vec<String>) -> Self {
        let extensions = extensions
            .iter()
            .filter_map(|e| encode::sanitize_extension(e))
            .filter(|e| {
                !super::parse::is_keyword(e, "AUTH") && !super::parse::is_keyword(e, "STARTTLS")
            })
            .collect();
        SmtpDownstream {
            tls,
            limits,
            hostname: encode::sanitize_word(hostname).unwrap_or_else(|| DEFAULT_HOSTNAME.into()),
            extensions,
            buf: InputBuffer::new(),
            state: State::Greeting,
            out: Outbox::new(),
            client_domain: None,
        }
    }

    /// Hands the machine bytes read from the client. Ignored once the machine closed.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Closed) {
            self.buf.extend(bytes);
        }
    }

    /// What happens next: an event for the session, or I/O (or an error) for the driver.
    // `next()` is the name of the machine interface (STYLE.md), not an Iterator.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<DownstreamEvent, Interrupt<SmtpError>> {
        loop {
            if let Some(step) = self.out.pop(&mut self.buf) {
                return step;
            }
            if !self.advance()? {
                return Err(Io::NeedInput.into());
            }
        }
    }

    /// The STARTTLS handshake is done: forget everything said in cleartext (the client
    /// must send EHLO again; no new greeting).
    pub fn tls_established(&mut self) {
        if matches!(self.state, State::TlsPending) {
            self.tls = LocalTls::Active;
            self.buf.clear();
            self.out.clear();
            self.client_domain = None;
            self.state = State::Command;
        } else {
            self.fail(SmtpError::Misuse("tls_established() without STARTTLS"));
        }
    }

    /// Accepts the pending login: `235 2.7.0 Authentication successful`, then `Done`.
    /// SMTP has no place for the upstream's capabilities: they are ignored. Ignored
    /// when no login is pending.
    /// The pre-login limit that closed the connection, if one did.
    pub fn close_reason(&self) -> Option<crate::proto::CloseReason> {
        self.out.close_reason()
    }

    pub fn accept(&mut self, _upstream_capabilities: Option<&str>) {
        if matches!(self.state, State::Decision) {
            self.state = State::Finished;
            self.write(encode::reply(235, "2.7.0", "Authentication successful"));
            self.out.push(Step::Done);
        }
    }

    /// Refuses the pending login (`535 5.7.8` or, when temporary, `454 4.7.0`); the
    /// client may try again until `max_auth_failures`. Ignored when no login is
    /// pending.
    pub fn reject(&mut self, reason: LoginRejection) {
        if !matches!(self.state, State::Decision) {
            return;
        }
        self.state = State::Command;
        let text = |m: &str, default: &str| match encode::sanitize(m) {
            t if t.is_empty() => default.to_owned(),
            t => t,
        };
        let mut bytes = match reason {
            LoginRejection::BadCredentials => {
                encode::reply(535, "5.7.8", "Authentication credentials invalid")
            }
            LoginRejection::NeedsReauthorization(m) => encode::reply(
                535,
                "5.7.8",
                &text(&m, "Authentication credentials invalid"),
            ),
            LoginRejection::Unavailable(m) => {
                encode::reply(454, "4.7.0", &text(&m, "Temporary authentication failure"))
            }
        };
        if self.out.count_failure(&self.limits) {
            bytes.extend(encode::reply(
                421,
                "4.7.0",
                "Too many failed authentications",
            ));
            self.close_with(bytes);
        } else {
            self.write(bytes);
        }
    }

    /// The client's EHLO/HELO argument, for the upstream EHLO (`None` before EHLO,
    /// and again after STARTTLS until the client repeats it).
    pub fn client_domain(&self) -> Option<&str> {
        self.client_domain.as_deref()
    }

    fn login_allowed(&self) -> bool {
        self.tls != LocalTls::StartTlsRequired
    }

    /// The EHLO keyword lines for the current TLS state.
    fn extension_lines(&self) -> Vec<String> {
        let mut lines = self.extensions.clone();
        if self.login_allowed() {
            lines.push("AUTH PLAIN LOGIN".into());
        } else {
            lines.push("STARTTLS".into());
        }
        lines
    }

    fn write(&mut self, bytes: Vec<u8>) {
        self.out.push(Step::Io(Io::Write(bytes)));
    }

    fn close_with(&mut self, bytes: Vec<u8>) {
        self.write(bytes);
        self.out.push(Step::Io(Io::Close));
        self.buf.clear();
        self.state = State::Closed;
    }

    fn fail(&mut self, e: SmtpError) {
        self.out.push(Step::Error(e));
        self.buf.clear();
        self.state = State::Closed;
    }

    /// Writes a reply; a refusal may be the one that ends the connection.
    fn reply(&mut self, mut bytes: Vec<u8>, kind: Kind) {
        if kind == Kind::Refusal && self.out.count_error(&self.limits) {
            bytes.extend(encode::reply(421, "4.7.0", "Too many invalid commands"));
            return self.close_with(bytes);
        }
        self.write(bytes);
    }

    fn apply(&mut self, action: Action) {
        self.state = State::Command;
        match action {
            Action::Reply(bytes, kind) => self.reply(bytes, kind),
            Action::Greeted { domain, reply } => {
                self.client_domain = Some(domain);
                self.write(reply);
            }
            Action::Quit => self.close_with(encode::reply(221, "2.0.0", "Bye")),
            Action::StartTls => {
                self.write(encode::reply(220, "2.0.0", "Ready to start TLS"));
                self.out.push(Step::Io(Io::StartTls));
                self.state = State::TlsPending;
            }
            Action::StartTlsPipelined => self.fail(SmtpError::StartTlsPipelining),
            Action::Login(creds) => {
                self.out.push(Step::Login(creds));
                self.state = State::Decision;
            }
            Action::SaslContinue(challenge, step) => {
                self.write(challenge.to_vec());
                self.state = State::Sasl(step);
            }
            Action::SkipChunk { size, reply } => {
                self.state = State::Skip {
                    remaining: size,
                    reply,
                };
            }
            Action::Close(bytes) => self.close_with(bytes),
        }
    }
}

mod framing;
mod respond;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tls_tests;
