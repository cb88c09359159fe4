//! The machine facing the real IMAP server (client role), up to a finished OAuth login.
//!
//! greeting → `CAPABILITY` (unless the greeting carried them) → `STARTTLS` when
//! required (then `CAPABILITY` again: nothing learned in cleartext is kept) →
//! `AUTHENTICATE XOAUTH2|OAUTHBEARER` (SASL-IR when offered, else the initial
//! response answers the first `+`) → [`UpstreamEvent::LoggedIn`].
//!
//! A `+ <base64 JSON>` after the initial response is the server's error challenge: we
//! answer with the mechanism's dummy response (empty line for XOAUTH2, `AQ==` = ^A for
//! OAUTHBEARER) and report the tagged NO as [`UpstreamAuthError::TokenRejected`] with the
//! JSON `status`, or as [`UpstreamAuthError::Unavailable`] for `NO [UNAVAILABLE]`.
//!
//! Server lines are bounded by `max(limits.max_line, 64 KiB)`. Literals in untagged data
//! (unusual before login) are skipped with the same bound.

use std::collections::VecDeque;

use secrecy::SecretString;

use self::replies::Msg;
use super::encode;
use super::parse;
use super::types::{ImapError, UpstreamEvent};
use crate::proto::line::{InputBuffer, LineStatus, find_line};
use crate::proto::{
    Interrupt, Io, Limits, Mechanism, UpstreamAuthError, UpstreamLogin, UpstreamTls, sasl,
};

/// Smallest bound on a server line (and on a literal in untagged data).
pub const UPSTREAM_MAX_LINE: usize = 64 * 1024;

/// The sans-I/O IMAP client side up to the end of login.
#[derive(Debug)]
pub struct ImapUpstream {
    login: UpstreamLogin,
    max_line: usize,
    buf: InputBuffer,
    state: State,
    queue: VecDeque<Step>,
    tag_counter: u32,
    tls_done: bool,
    /// Capabilities learned in the current phase (reset by STARTTLS).
    caps: Option<String>,
    /// Bytes of an untagged literal still to skip; then the rest of that response.
    skip: usize,
    tail: bool,
}

#[derive(Debug)]
enum Step {
    Io(Io),
    LoggedIn(Option<String>),
    Error(ImapError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sasl {
    /// No SASL-IR: the initial response waits for the first `+`.
    AwaitingFirstContinuation,
    /// The initial response is out.
    Sent,
    /// We answered the error challenge; its `status`, if any, is kept in `Auth`.
    ErrorAnswered,
}

#[derive(Debug)]
enum State {
    Greeting,
    Capability {
        tag: String,
    },
    StartTls {
        tag: String,
    },
    TlsPending,
    Auth {
        tag: String,
        sasl: Sasl,
        status: Option<String>,
        caps_after: Option<String>,
    },
    Finished,
    Closed,
}

fn has_capability(caps: &str, wanted: &str) -> bool {
    caps.split_ascii_whitespace()
        .any(|c| c.eq_ignore_ascii_case(wanted))
}

fn protocol(msg: impl Into<String>) -> ImapError {
    ImapError::Auth(UpstreamAuthError::Protocol(msg.into()))
}

impl ImapUpstream {
    pub fn new(login: UpstreamLogin, limits: Limits) -> Self {
        ImapUpstream {
            login,
            max_line: limits.max_line.max(UPSTREAM_MAX_LINE),
            buf: InputBuffer::new(),
            state: State::Greeting,
            queue: VecDeque::new(),
            tag_counter: 0,
            tls_done: false,
            caps: None,
            skip: 0,
            tail: false,
        }
    }

    /// Hands the machine bytes read from the server. Ignored once the machine closed.
    pub fn feed(&mut self, bytes: &[u8]) {
        if !matches!(self.state, State::Closed) {
            self.buf.extend(bytes);
        }
    }

    /// What happens next: the login result, or I/O (or an error) for the driver.
    // `next()` is the name of the machine interface (STYLE.md), not an Iterator.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<UpstreamEvent, Interrupt<ImapError>> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return match step {
                    Step::Io(io) => Err(io.into()),
                    Step::LoggedIn(capabilities) => Ok(UpstreamEvent::LoggedIn {
                        capabilities,
                        leftover: self.buf.take(),
                    }),
                    Step::Error(e) => Err(Interrupt::Error(e)),
                };
            }
            match self.state {
                State::Closed => return Err(Io::Close.into()),
                State::Finished => {
                    return Err(Interrupt::Error(ImapError::Misuse(
                        "login already finished",
                    )));
                }
                State::TlsPending if !self.buf.is_empty() => {
                    self.fail(ImapError::StartTlsInjection);
                    continue;
                }
                State::TlsPending => {
                    return Err(Interrupt::Error(ImapError::Misuse(
                        "next() called before tls_established()",
                    )));
                }
                _ => {}
            }
            if !self.read_line() {
                return Err(Io::NeedInput.into());
            }
        }
    }

    /// The STARTTLS handshake is done: forget the cleartext phase, ask for capabilities.
    pub fn tls_established(&mut self) {
        if matches!(self.state, State::TlsPending) {
            self.buf.clear();
            self.caps = None;
            self.tls_done = true;
            self.send_capability();
        } else {
            self.fail(ImapError::Misuse("tls_established() without STARTTLS"));
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag_counter += 1;
        format!("A{}", self.tag_counter)
    }

    fn write(&mut self, bytes: Vec<u8>) {
        self.queue.push_back(Step::Io(Io::Write(bytes)));
    }

    fn fail(&mut self, e: ImapError) {
        self.queue.push_back(Step::Error(e));
        self.buf.clear();
        self.state = State::Closed;
    }

    fn send_capability(&mut self) {
        let tag = self.next_tag();
        self.write(encode::command(&tag, "CAPABILITY"));
        self.state = State::Capability { tag };
    }

    /// Capabilities are known: STARTTLS if still needed, else authenticate.
    fn proceed(&mut self) {
        let caps = self.caps.clone().unwrap_or_default();
        if self.login.tls == UpstreamTls::StartTls && !self.tls_done {
            if !has_capability(&caps, "STARTTLS") {
                return self.fail(UpstreamAuthError::StartTlsUnavailable.into());
            }
            let tag = self.next_tag();
            self.write(encode::command(&tag, "STARTTLS"));
            self.state = State::StartTls { tag };
            return;
        }
        let mechanism = match self.login.mechanism {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
        };
        if !has_capability(&caps, &format!("AUTH={mechanism}")) {
            return self.fail(UpstreamAuthError::MechanismUnavailable(mechanism).into());
        }
        let tag = self.next_tag();
        let sasl = if has_capability(&caps, "SASL-IR") {
            let ir = self.initial_response();
            self.write(encode::authenticate(&tag, mechanism, Some(&ir)));
            Sasl::Sent
        } else {
            self.write(encode::authenticate(&tag, mechanism, None));
            Sasl::AwaitingFirstContinuation
        };
        self.state = State::Auth {
            tag,
            sasl,
            status: None,
            caps_after: None,
        };
    }

    fn initial_response(&self) -> SecretString {
        let l = &self.login;
        match l.mechanism {
            Mechanism::Xoauth2 => sasl::xoauth2_initial_response(&l.username, &l.access_token),
            Mechanism::Oauthbearer => {
                sasl::oauthbearer_initial_response(&l.username, &l.host, l.port, &l.access_token)
            }
        }
    }

    /// Reads and handles one server line. `false`: more input needed.
    fn read_line(&mut self) -> bool {
        if self.skip > 0 {
            let n = self.skip.min(self.buf.len());
            self.buf.consume(n);
            self.skip -= n;
            return self.skip == 0;
        }
        let n = match find_line(self.buf.as_slice(), self.max_line) {
            LineStatus::NeedMore => return false,
            LineStatus::TooLong => {
                self.fail(ImapError::LineTooLong(self.max_line));
                return true;
            }
            LineStatus::Line(n) => n,
        };
        let line = &self.buf.as_slice()[..n];
        let literal = parse::trailing_literal(line);
        let msg = if self.tail {
            Some(Msg::Other)
        } else {
            parse::response(line)
                .ok()
                .map(|(_, r)| Msg::from_response(r))
        };
        self.buf.consume(n);
        let Some(msg) = msg else {
            self.fail(protocol("unparsable server response"));
            return true;
        };
        if let Msg::Other = msg {
            // Untagged data we ignore; it may continue after a literal.
            self.tail = false;
            if let Some((len, _)) = literal {
                if len > self.max_line {
                    self.fail(protocol("server literal too large"));
                } else {
                    self.skip = len;
                    self.tail = true;
                }
            }
            return true;
        }
        self.handle(msg);
        true
    }
}

mod replies;

#[cfg(test)]
mod tests;
