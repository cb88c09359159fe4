//! The pre-login machine facing the legacy client.
//!
//! greeting → (STARTTLS) → LOGIN / AUTHENTICATE PLAIN → [`DownstreamEvent::Login`] →
//! the session calls [`ImapDownstream::accept`] or [`ImapDownstream::reject`] → tagged
//! reply → [`DownstreamEvent::Done`] with the bytes the client already pipelined.
//!
//! **Framing.** Commands are framed line by line ([`find_line`](crate::proto::line::find_line), at most
//! `limits.max_line` bytes per line). A line ending in a literal announcement is judged
//! *before* any literal data is read: only a LOGIN that may log in now gets its literal
//! (with a `+` continuation when synchronizing); anything else is refused at once, so a
//! refused command's literal is never read as commands. For a non-synchronizing
//! literal the client sends the data anyway: a small one is skipped, a too large one
//! closes the connection.
//!
//! **Limits.** Every refusal the machine makes itself (BAD, and the `NO` for privacy or
//! an unknown mechanism) counts towards `max_errors`; every `reject()` counts towards
//! `max_auth_failures`. Reaching either ends with `* BYE` and [`Io::Close`].

use self::respond::Action;
use super::encode::{self, tagged, untagged};
use super::types::{DownstreamEvent, ImapError, LoginRejection};
use crate::proto::line::InputBuffer;
use crate::proto::preauth::{Outbox, Step};
use crate::proto::{Interrupt, Io, Limits, LocalTls};

/// The sans-I/O IMAP server side up to the end of login.
#[derive(Debug)]
pub struct ImapDownstream {
    tls: LocalTls,
    limits: Limits,
    buf: InputBuffer,
    state: State,
    /// Steps to hand out; refusal and failure counts.
    out: Outbox<ImapError>,
}

#[derive(Debug)]
enum State {
    Greeting,
    /// Framing a command; `framed` bytes of it (lines and literals) are complete.
    Command {
        framed: usize,
    },
    /// A LOGIN's literal: the command is complete up to `end` once that much arrived.
    Literal {
        end: usize,
    },
    /// Skipping a refused command's non-synchronizing literal, then its remaining lines.
    Skip {
        remaining: usize,
        reply: Vec<u8>,
    },
    SkipLine {
        reply: Vec<u8>,
    },
    /// Dropping the rest of an over-long SASL response line.
    Discard,
    /// AUTHENTICATE sent `+`; waiting for the base64 response.
    Sasl {
        tag: Vec<u8>,
    },
    /// Login event handed out; waiting for accept() / reject().
    Decision {
        tag: Vec<u8>,
    },
    TlsPending,
    Finished,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fine,
    Refusal,
}

impl ImapDownstream {
    pub fn new(tls: LocalTls, limits: Limits) -> Self {
        ImapDownstream {
            tls,
            limits,
            buf: InputBuffer::new(),
            state: State::Greeting,
            out: Outbox::new(),
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
    pub fn next(&mut self) -> Result<DownstreamEvent, Interrupt<ImapError>> {
        loop {
            if let Some(step) = self.out.pop(&mut self.buf) {
                return step;
            }
            if !self.advance()? {
                return Err(Io::NeedInput.into());
            }
        }
    }

    /// The STARTTLS handshake is done: forget everything said in cleartext.
    pub fn tls_established(&mut self) {
        if matches!(self.state, State::TlsPending) {
            self.tls = LocalTls::Active;
            self.buf.clear();
            self.out.clear();
            self.state = State::Command { framed: 0 };
        } else {
            self.fail(ImapError::Misuse("tls_established() without STARTTLS"));
        }
    }

    /// Accepts the pending login: `TAG OK [CAPABILITY caps] Logged in`, then `Done`.
    /// Ignored when no login is pending.
    /// The pre-login limit that closed the connection, if one did.
    pub fn close_reason(&self) -> Option<crate::proto::CloseReason> {
        self.out.close_reason()
    }

    pub fn accept(&mut self, upstream_capabilities: Option<&str>) {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Decision { tag } => {
                let code = upstream_capabilities
                    .and_then(encode::sanitize_capabilities)
                    .map(|c| format!("CAPABILITY {c}"));
                self.write(tagged(&tag, "OK", code.as_deref(), "Logged in"));
                self.out.push(Step::Done);
            }
            other => self.state = other,
        }
    }

    /// Refuses the pending login with a tagged NO; the client may try again until
    /// `max_auth_failures`. Ignored when no login is pending.
    pub fn reject(&mut self, reason: LoginRejection) {
        match std::mem::replace(&mut self.state, State::Command { framed: 0 }) {
            State::Decision { tag } => {
                let (code, text) = match reason {
                    LoginRejection::BadCredentials => ("AUTHENTICATIONFAILED", String::new()),
                    LoginRejection::NeedsReauthorization(m) => ("AUTHENTICATIONFAILED", m),
                    LoginRejection::Unavailable(m) => ("UNAVAILABLE", m),
                };
                let text = match encode::sanitize(&text) {
                    t if t.is_empty() => "Authentication failed.".to_owned(),
                    t => t,
                };
                let mut bytes = tagged(&tag, "NO", Some(code), &text);
                if self.out.count_failure(&self.limits) {
                    bytes.extend(untagged("BYE Too many failed logins"));
                    self.close_with(bytes);
                } else {
                    self.write(bytes);
                }
            }
            other => self.state = other,
        }
    }

    fn login_allowed(&self) -> bool {
        self.tls != LocalTls::StartTlsRequired
    }

    fn capabilities(&self) -> String {
        let tail = match self.tls {
            LocalTls::StartTlsRequired => "STARTTLS LOGINDISABLED",
            LocalTls::None | LocalTls::Active => "AUTH=PLAIN",
        };
        format!("IMAP4rev1 LITERAL+ SASL-IR ID {tail}")
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

    fn fail(&mut self, e: ImapError) {
        self.out.push(Step::Error(e));
        self.buf.clear();
        self.state = State::Closed;
    }

    /// Writes a reply; a refusal may be the one that ends the connection.
    fn reply(&mut self, mut bytes: Vec<u8>, kind: Kind) {
        if kind == Kind::Refusal && self.out.count_error(&self.limits) {
            bytes.extend(untagged("BYE Too many invalid commands"));
            return self.close_with(bytes);
        }
        self.write(bytes);
    }

    fn apply(&mut self, action: Action) {
        self.state = State::Command { framed: 0 };
        match action {
            Action::Reply(bytes, kind) => self.reply(bytes, kind),
            Action::Logout(tag) => self.close_with(
                [
                    untagged("BYE Logging out"),
                    tagged(&tag, "OK", None, "Logout completed"),
                ]
                .concat(),
            ),
            Action::StartTls(tag) => {
                self.write(tagged(&tag, "OK", None, "Begin TLS negotiation now"));
                self.out.push(Step::Io(Io::StartTls));
                self.state = State::TlsPending;
            }
            Action::StartTlsPipelined => self.fail(ImapError::StartTlsPipelining),
            Action::Login(tag, creds) => {
                self.out.push(Step::Login(creds));
                self.state = State::Decision { tag };
            }
            Action::SaslContinue(tag) => {
                self.write(encode::CONTINUE_SASL.to_vec());
                self.state = State::Sasl { tag };
            }
        }
    }
}

mod framing;
mod respond;

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod tests;
