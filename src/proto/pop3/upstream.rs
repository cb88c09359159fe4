//! The machine facing the real POP3 server (client role), up to a finished OAuth login.
//!
//! greeting → `CAPA` → `STLS` when required (then `CAPA` again: nothing learned in
//! cleartext is kept) → `AUTH XOAUTH2|OAUTHBEARER <initial-response>` (RFC 5034) →
//! [`UpstreamEvent::LoggedIn`].
//!
//! A `+ <base64 JSON>` after the initial response is the server's error challenge: we
//! answer with the mechanism's dummy response (empty line for XOAUTH2, `AQ==` = ^A for
//! OAUTHBEARER) and classify the `-ERR` that follows:
//!
//! * `[SYS/TEMP]`, `[UNAVAILABLE]` or `[IN-USE]` (mailbox locked) →
//!   [`UpstreamAuthError::Unavailable`]. Dovecot answers `-ERR [SYS/TEMP]` at once, with
//!   no challenge, when it cannot check the token;
//! * `[SYS/PERM]` → [`UpstreamAuthError::Protocol`]: the server failed for a reason a
//!   new token would not fix, so it must not start a re-consent;
//! * anything else (`[AUTH]`, no code) → [`UpstreamAuthError::TokenRejected`] with the
//!   challenge's JSON `status`, or `unknown` without a challenge.
//!
//! Server lines are bounded by `max(limits.max_line, 64 KiB)`. Of the CAPA list only
//! three facts are kept (STLS, SASL XOAUTH2, SASL OAUTHBEARER), so a long list costs
//! no memory.

use std::collections::VecDeque;

use secrecy::SecretString;

use super::encode;
use super::parse;
use super::types::{BodyLine, Pop3Error, Response, Status, UpstreamEvent};
use crate::proto::line::{InputBuffer, LineStatus, find_line};
use crate::proto::{
    Interrupt, Io, Limits, Mechanism, UpstreamAuthError, UpstreamLogin, UpstreamTls, sasl,
};

/// Smallest bound on a server line.
pub const UPSTREAM_MAX_LINE: usize = 64 * 1024;

/// The sans-I/O POP3 client side up to the end of login.
#[derive(Debug)]
pub struct Pop3Upstream {
    login: UpstreamLogin,
    max_line: usize,
    buf: InputBuffer,
    state: State,
    queue: VecDeque<Step>,
    tls_done: bool,
    /// What the current phase's CAPA said (reset by STLS).
    caps: Caps,
}

/// The capabilities we care about.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Caps {
    stls: bool,
    xoauth2: bool,
    oauthbearer: bool,
}

#[derive(Debug)]
enum Step {
    Io(Io),
    LoggedIn,
    Error(Pop3Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sasl {
    /// The initial response is out.
    Sent,
    /// We answered the error challenge; its `status`, if any, is kept in `Auth`.
    ErrorAnswered,
}

#[derive(Debug)]
enum State {
    Greeting,
    /// `CAPA` sent; waiting for its status line.
    Capa,
    /// Reading the CAPA list up to its `.` line.
    CapaList,
    Stls,
    TlsPending,
    Auth {
        sasl: Sasl,
        status: Option<String>,
    },
    Finished,
    Closed,
}

/// One server line, owned (so the buffer can be consumed before acting).
#[derive(Debug)]
enum Msg {
    Ok,
    Err {
        code: Option<String>,
        text: String,
    },
    Continuation(Vec<u8>),
    /// A line of the CAPA list, reduced to what we keep.
    Capability(Caps),
    End,
}

impl Msg {
    fn from_response(r: Response<'_>) -> Msg {
        match r {
            Response::Status {
                status: Status::Ok, ..
            } => Msg::Ok,
            Response::Status {
                status: Status::Err,
                code,
                text,
            } => Msg::Err {
                code: code.map(|c| String::from_utf8_lossy(c).to_ascii_uppercase()),
                text: encode::sanitize_bytes(text),
            },
            Response::Continuation(t) => Msg::Continuation(t.to_vec()),
        }
    }

    fn from_body_line(l: BodyLine<'_>) -> Msg {
        let BodyLine::Line(line) = l else {
            return Msg::End;
        };
        let mut caps = Caps::default();
        match parse::capability(line) {
            Some((name, _)) if name == "STLS" => caps.stls = true,
            Some((name, args)) if name == "SASL" => {
                for m in args {
                    caps.xoauth2 |= m.eq_ignore_ascii_case(b"XOAUTH2");
                    caps.oauthbearer |= m.eq_ignore_ascii_case(b"OAUTHBEARER");
                }
            }
            _ => {}
        }
        Msg::Capability(caps)
    }
}

/// Whether an RFC 2449 response code is `wanted` or one of its sub-codes
/// (`SYS/TEMP` matches `SYS/TEMP` and `SYS/TEMP/X`).
fn code_is(code: &str, wanted: &str) -> bool {
    code.strip_prefix(wanted)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn protocol(msg: impl Into<String>) -> Pop3Error {
    Pop3Error::Auth(UpstreamAuthError::Protocol(msg.into()))
}

impl Pop3Upstream {
    pub fn new(login: UpstreamLogin, limits: Limits) -> Self {
        Pop3Upstream {
            login,
            max_line: limits.max_line.max(UPSTREAM_MAX_LINE),
            buf: InputBuffer::new(),
            state: State::Greeting,
            queue: VecDeque::new(),
            tls_done: false,
            caps: Caps::default(),
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
    pub fn next(&mut self) -> Result<UpstreamEvent, Interrupt<Pop3Error>> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return match step {
                    Step::Io(io) => Err(io.into()),
                    Step::LoggedIn => Ok(UpstreamEvent::LoggedIn {
                        capabilities: None,
                        leftover: self.buf.take(),
                    }),
                    Step::Error(e) => Err(Interrupt::Error(e)),
                };
            }
            match self.state {
                State::Closed => return Err(Io::Close.into()),
                State::Finished => {
                    return Err(Interrupt::Error(Pop3Error::Misuse(
                        "login already finished",
                    )));
                }
                State::TlsPending if !self.buf.is_empty() => {
                    self.fail(Pop3Error::StartTlsInjection);
                    continue;
                }
                State::TlsPending => {
                    return Err(Interrupt::Error(Pop3Error::Misuse(
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

    /// The STLS handshake is done: forget the cleartext phase, ask CAPA again.
    pub fn tls_established(&mut self) {
        if matches!(self.state, State::TlsPending) {
            self.buf.clear();
            self.caps = Caps::default();
            self.tls_done = true;
            self.send_capa();
        } else {
            self.fail(Pop3Error::Misuse("tls_established() without STLS"));
        }
    }

    fn write(&mut self, bytes: Vec<u8>) {
        self.queue.push_back(Step::Io(Io::Write(bytes)));
    }

    fn fail(&mut self, e: Pop3Error) {
        self.queue.push_back(Step::Error(e));
        self.buf.clear();
        self.state = State::Closed;
    }

    fn send_capa(&mut self) {
        self.write(encode::command("CAPA"));
        self.state = State::Capa;
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
        let n = match find_line(self.buf.as_slice(), self.max_line) {
            LineStatus::NeedMore => return false,
            LineStatus::TooLong => {
                self.fail(Pop3Error::LineTooLong(self.max_line));
                return true;
            }
            LineStatus::Line(n) => n,
        };
        let line = &self.buf.as_slice()[..n];
        let msg = match self.state {
            State::CapaList => parse::body_line(line)
                .ok()
                .map(|(_, l)| Msg::from_body_line(l)),
            _ => parse::response(line)
                .ok()
                .map(|(_, r)| Msg::from_response(r)),
        };
        self.buf.consume(n);
        match msg {
            Some(msg) => self.handle(msg),
            None => self.fail(protocol("unparsable server response")),
        }
        true
    }

    fn handle(&mut self, msg: Msg) {
        if let Msg::Continuation(_) = msg
            && !matches!(self.state, State::Auth { .. })
        {
            return self.fail(protocol("unexpected continuation request"));
        }
        match (std::mem::replace(&mut self.state, State::Closed), msg) {
            (State::Greeting, Msg::Ok) => self.send_capa(),
            (State::Greeting, Msg::Err { text, .. }) => {
                self.fail(UpstreamAuthError::Unavailable(text).into())
            }
            (State::Capa, Msg::Ok) => self.state = State::CapaList,
            // No CAPA (a pre-RFC 2449 server): nothing is offered.
            (State::Capa, Msg::Err { .. }) => self.proceed(),
            (State::CapaList, Msg::Capability(c)) => {
                self.caps.stls |= c.stls;
                self.caps.xoauth2 |= c.xoauth2;
                self.caps.oauthbearer |= c.oauthbearer;
                self.state = State::CapaList;
            }
            (State::CapaList, Msg::End) => self.proceed(),
            (State::Stls, Msg::Ok) if !self.buf.is_empty() => {
                self.fail(Pop3Error::StartTlsInjection)
            }
            (State::Stls, Msg::Ok) => {
                self.queue.push_back(Step::Io(Io::StartTls));
                self.state = State::TlsPending;
            }
            (State::Stls, Msg::Err { .. }) => {
                self.fail(UpstreamAuthError::StartTlsUnavailable.into())
            }
            (State::Auth { .. }, Msg::Ok) => {
                self.queue.push_back(Step::LoggedIn);
                self.state = State::Finished;
            }
            (
                State::Auth {
                    sasl: Sasl::Sent, ..
                },
                Msg::Continuation(challenge),
            ) => {
                let status = sasl::error_challenge_status(&challenge);
                self.write(match self.login.mechanism {
                    Mechanism::Xoauth2 => b"\r\n".to_vec(),
                    Mechanism::Oauthbearer => b"AQ==\r\n".to_vec(),
                });
                let sasl = Sasl::ErrorAnswered;
                self.state = State::Auth { sasl, status };
            }
            (State::Auth { .. }, Msg::Continuation(_)) => {
                self.fail(protocol("unexpected continuation request"))
            }
            (State::Auth { status, .. }, Msg::Err { code, text }) => {
                self.fail(auth_failure(code.as_deref(), text, status).into())
            }
            (_, _) => self.fail(protocol("unexpected server response")),
        }
    }

    /// Capabilities are known: STLS if still needed, else authenticate.
    fn proceed(&mut self) {
        if self.login.tls == UpstreamTls::StartTls && !self.tls_done {
            if !self.caps.stls {
                return self.fail(UpstreamAuthError::StartTlsUnavailable.into());
            }
            self.write(encode::command("STLS"));
            self.state = State::Stls;
            return;
        }
        let (mechanism, offered) = match self.login.mechanism {
            Mechanism::Xoauth2 => ("XOAUTH2", self.caps.xoauth2),
            Mechanism::Oauthbearer => ("OAUTHBEARER", self.caps.oauthbearer),
        };
        if !offered {
            return self.fail(UpstreamAuthError::MechanismUnavailable(mechanism).into());
        }
        let ir = self.initial_response();
        self.write(encode::auth(mechanism, Some(&ir)));
        self.state = State::Auth {
            sasl: Sasl::Sent,
            status: None,
        };
    }
}

/// Classifies the `-ERR` that ends an AUTH exchange (see the module documentation).
fn auth_failure(code: Option<&str>, text: String, status: Option<String>) -> UpstreamAuthError {
    let temporary = ["SYS/TEMP", "UNAVAILABLE", "IN-USE"];
    match code {
        Some(c) if temporary.iter().any(|t| code_is(c, t)) => UpstreamAuthError::Unavailable(text),
        Some(c) if code_is(c, "SYS/PERM") => {
            UpstreamAuthError::Protocol(format!("AUTH refused: {text}"))
        }
        _ => UpstreamAuthError::TokenRejected {
            status: status.unwrap_or_else(|| "unknown".to_owned()),
        },
    }
}

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod tests;
