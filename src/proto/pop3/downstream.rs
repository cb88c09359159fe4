//! The pre-login machine facing the legacy client (POP3 server role).
//!
//! greeting → (CAPA, STLS) → `USER` + `PASS` or `AUTH PLAIN` (initial response, or
//! `+ ` continuation; `*` cancels) → [`DownstreamEvent::Login`] → the session calls
//! [`Pop3Downstream::accept`] or [`Pop3Downstream::reject`] → `+OK` / `-ERR` →
//! [`DownstreamEvent::Done`] with the bytes the client already pipelined.
//!
//! **Framing.** POP3 has no literals: commands are single lines
//! ([`crate::proto::line::find_line`], at most `limits.max_line` bytes);
//! the response line of `AUTH PLAIN` is bounded by `limits.max_sasl`.
//!
//! **USER / PASS.** As RFC 1939 says, PASS must come right after a successful USER:
//! any other command in between (and any failed login) forgets the user name.
//!
//! **Limits.** Every `-ERR` the machine sends on its own counts towards `max_errors`;
//! the command that reaches the limit is answered `-ERR Too many invalid commands`
//! (as Dovecot does) and the connection closes. Every `reject()` counts towards
//! `max_auth_failures`; the rejection that reaches it is sent, then the connection
//! closes. Counters survive STLS.

use self::respond::Action;
use super::encode::{self, err, ok};
use super::types::{DownstreamEvent, LoginRejection, Pop3Error};
use crate::proto::line::{InputBuffer, LineStatus, find_line, strip_eol};
use crate::proto::preauth::{Outbox, Step};
use crate::proto::{CloseReason, Interrupt, Io, Limits, LocalTls};

/// The sans-I/O POP3 server side up to the end of login.
#[derive(Debug)]
pub struct Pop3Downstream {
    tls: LocalTls,
    limits: Limits,
    buf: InputBuffer,
    state: State,
    /// Steps to hand out; refusal and failure counts.
    out: Outbox<Pop3Error>,
    /// The name of a USER command that PASS may complete.
    user: Option<String>,
}

#[derive(Debug)]
enum State {
    Greeting,
    /// Waiting for a command line.
    Command,
    /// `AUTH PLAIN` sent `+ `; waiting for the base64 response.
    Sasl,
    /// Dropping the rest of an over-long SASL response line.
    Discard,
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

impl Pop3Downstream {
    pub fn new(tls: LocalTls, limits: Limits) -> Self {
        Pop3Downstream {
            tls,
            limits,
            buf: InputBuffer::new(),
            state: State::Greeting,
            out: Outbox::new(),
            user: None,
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
    pub fn next(&mut self) -> Result<DownstreamEvent, Interrupt<Pop3Error>> {
        loop {
            if let Some(step) = self.out.pop(&mut self.buf) {
                return step;
            }
            if !self.advance()? {
                return Err(Io::NeedInput.into());
            }
        }
    }

    /// The STLS handshake is done: forget everything said in cleartext (no new
    /// greeting: the client asks CAPA again).
    pub fn tls_established(&mut self) {
        if matches!(self.state, State::TlsPending) {
            self.tls = LocalTls::Active;
            self.buf.clear();
            self.out.clear();
            self.user = None;
            self.state = State::Command;
        } else {
            self.fail(Pop3Error::Misuse("tls_established() without STLS"));
        }
    }

    /// Accepts the pending login: `+OK Logged in`, then `Done`. POP3 has no place for
    /// capabilities in that reply (clients ask CAPA again after login, and that goes
    /// upstream), so `upstream_capabilities` is not used. Ignored when no login is
    /// pending.
    /// The pre-login limit that closed the connection, if one did.
    pub fn close_reason(&self) -> Option<crate::proto::CloseReason> {
        self.out.close_reason()
    }

    pub fn accept(&mut self, upstream_capabilities: Option<&str>) {
        let _ = upstream_capabilities;
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Decision => {
                self.write(ok("Logged in"));
                self.out.push(Step::Done);
            }
            other => self.state = other,
        }
    }

    /// Refuses the pending login with `-ERR [AUTH]` or `-ERR [SYS/TEMP]` (RFC 3206); the
    /// client may try again until `max_auth_failures`. Ignored when no login is
    /// pending.
    pub fn reject(&mut self, reason: LoginRejection) {
        match std::mem::replace(&mut self.state, State::Command) {
            State::Decision => {
                let (code, text) = match reason {
                    LoginRejection::BadCredentials => ("AUTH", String::new()),
                    LoginRejection::NeedsReauthorization(m) => ("AUTH", m),
                    LoginRejection::Unavailable(m) => ("SYS/TEMP", m),
                };
                let text = match encode::sanitize(&text) {
                    t if t.is_empty() => "Authentication failed".to_owned(),
                    t => t,
                };
                let bytes = err(Some(code), &text);
                if self.out.count_failure(&self.limits) {
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

    /// The CAPA list: logins only where they are allowed, STLS only where it is
    /// offered. No PIPELINING, TOP, UIDL...: those describe the mailbox server, which
    /// the client reaches after login (and asks CAPA again).
    fn capabilities(&self) -> Vec<&'static str> {
        let mut caps = Vec::with_capacity(6);
        if self.login_allowed() {
            caps.extend(["USER", "SASL PLAIN"]);
        } else {
            caps.push("STLS");
        }
        caps.extend([
            "RESP-CODES",
            "AUTH-RESP-CODE",
            "IMPLEMENTATION oauth-mail-proxy",
        ]);
        caps
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

    fn fail(&mut self, e: Pop3Error) {
        self.out.push(Step::Error(e));
        self.buf.clear();
        self.state = State::Closed;
    }

    /// Writes a reply; a refusal may be the one that ends the connection.
    fn reply(&mut self, bytes: Vec<u8>, kind: Kind) {
        if kind == Kind::Refusal && self.out.count_error(&self.limits) {
            return self.close_with(err(None, "Too many invalid commands"));
        }
        self.write(bytes);
    }

    /// One step of work. `Ok(false)`: nothing to do without more input.
    fn advance(&mut self) -> Result<bool, Interrupt<Pop3Error>> {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Greeting => {
                self.state = State::Command;
                self.write(encode::GREETING.to_vec());
            }
            State::Command => match find_line(self.buf.as_slice(), self.limits.max_line) {
                LineStatus::NeedMore => {
                    self.state = State::Command;
                    return Ok(false);
                }
                LineStatus::TooLong => {
                    self.out.limit_hit(CloseReason::LineTooLong);
                    self.close_with(err(None, "Line too long"))
                }
                LineStatus::Line(n) => {
                    let last = n == self.buf.len();
                    let action = self.decide(&self.buf.as_slice()[..n], last);
                    self.buf.consume(n);
                    self.apply(action);
                }
            },
            State::Sasl => match find_line(self.buf.as_slice(), self.limits.max_sasl) {
                LineStatus::NeedMore => {
                    self.state = State::Sasl;
                    return Ok(false);
                }
                LineStatus::TooLong => {
                    self.state = State::Discard;
                    self.reply(err(None, "SASL response too long"), Kind::Refusal);
                }
                LineStatus::Line(n) => {
                    let action = match strip_eol(&self.buf.as_slice()[..n]) {
                        b"*" => Action::Reply(err(None, "Authentication cancelled"), Kind::Refusal),
                        line => self.plain(line),
                    };
                    self.buf.consume(n);
                    self.apply(action);
                }
            },
            State::Discard => match self.buf.as_slice().iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.buf.consume(i + 1);
                    self.state = State::Command;
                }
                None => {
                    self.buf.clear();
                    self.state = State::Discard;
                    return Ok(false);
                }
            },
            State::Decision => {
                self.state = State::Decision;
                return Err(Interrupt::Error(Pop3Error::Misuse(
                    "next() called before accept() or reject()",
                )));
            }
            State::TlsPending if !self.buf.is_empty() => self.fail(Pop3Error::StartTlsPipelining),
            State::TlsPending => {
                self.state = State::TlsPending;
                return Err(Interrupt::Error(Pop3Error::Misuse(
                    "next() called before tls_established()",
                )));
            }
            State::Finished => {
                self.state = State::Finished;
                return Err(Interrupt::Error(Pop3Error::Misuse(
                    "login already finished",
                )));
            }
            State::Closed => return Err(Io::Close.into()),
        }
        Ok(true)
    }

    fn apply(&mut self, action: Action) {
        self.state = State::Command;
        // PASS may only follow USER directly.
        self.user = None;
        match action {
            Action::Reply(bytes, kind) => self.reply(bytes, kind),
            Action::User(name) => {
                self.user = Some(name);
                self.write(ok("Send PASS"));
            }
            Action::Quit => self.close_with(ok("Logging out")),
            Action::StartTls => {
                self.write(ok("Begin TLS negotiation"));
                self.out.push(Step::Io(Io::StartTls));
                self.state = State::TlsPending;
            }
            Action::StartTlsPipelined => self.fail(Pop3Error::StartTlsPipelining),
            Action::Login(creds) => {
                self.out.push(Step::Login(creds));
                self.state = State::Decision;
            }
            Action::SaslContinue => {
                self.write(encode::CONTINUE_SASL.to_vec());
                self.state = State::Sasl;
            }
        }
    }
}

mod respond;

#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod tests;
