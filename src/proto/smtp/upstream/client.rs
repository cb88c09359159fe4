//! The client role's shared core, used by [`SmtpUpstream`](super::SmtpUpstream) and
//! [`SmtpProbe`](super::probe::SmtpProbe): the output queue, the bounded reply
//! reader (multi-line `250-` replies), and the opening every SMTP client goes through:
//! greeting → `EHLO` → (`STARTTLS` → handshake → `EHLO` again) → extensions known.
//!
//! The core hands its owner [`Progress::Ready`] once with the extensions, and then
//! every later reply ([`Progress::Reply`]); the owner writes its commands through
//! [`Client::write`] and ends with [`Client::finish`] or [`Client::fail`]. A `421` at any
//! point means the server is going away: [`UpstreamAuthError::Unavailable`].

use std::collections::VecDeque;

use crate::proto::line::{InputBuffer, LineStatus, find_line};
use crate::proto::smtp::encode;
use crate::proto::smtp::parse;
use crate::proto::smtp::types::{Reply, SmtpError};
use crate::proto::{Interrupt, Io, Limits, UpstreamAuthError, UpstreamTls};

use super::UPSTREAM_MAX_LINE;

/// EHLO argument when the one we were given has nothing printable.
const FALLBACK_EHLO_DOMAIN: &str = "localhost";

#[derive(Debug)]
enum Step<Ev> {
    Io(Io),
    Event(Ev),
    Error(SmtpError),
}

/// What the owner of the core must act on.
#[derive(Debug)]
pub(super) enum Progress<Ev> {
    /// An event to hand to the driver.
    Event(Ev),
    /// The opening is over: the server's EHLO keywords (learned over TLS when
    /// STARTTLS is required).
    Ready(Vec<String>),
    /// A reply after the opening.
    Reply(Reply),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Ehlo,
    StartTls,
    TlsPending,
    /// The owner's part (AUTH, QUIT).
    Open,
    Finished,
    Closed,
}

#[derive(Debug)]
pub(super) struct Client<Ev> {
    tls: UpstreamTls,
    ehlo_domain: String,
    max_line: usize,
    buf: InputBuffer,
    queue: VecDeque<Step<Ev>>,
    phase: Phase,
    tls_done: bool,
    /// The lines so far of a multi-line reply, and its size in bytes.
    partial: Option<Reply>,
    partial_size: usize,
}

pub(super) fn protocol(msg: impl Into<String>) -> SmtpError {
    SmtpError::Auth(UpstreamAuthError::Protocol(msg.into()))
}

impl<Ev> Client<Ev> {
    pub(super) fn new(tls: UpstreamTls, limits: Limits, ehlo_domain: &str) -> Self {
        Client {
            tls,
            ehlo_domain: encode::sanitize_word(ehlo_domain)
                .unwrap_or_else(|| FALLBACK_EHLO_DOMAIN.into()),
            max_line: limits.max_line.max(UPSTREAM_MAX_LINE),
            buf: InputBuffer::new(),
            queue: VecDeque::new(),
            phase: Phase::Greeting,
            tls_done: false,
            partial: None,
            partial_size: 0,
        }
    }

    /// The input buffer, for the bound checks of the tests.
    #[cfg(test)]
    pub(super) fn input(&self) -> &InputBuffer {
        &self.buf
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) {
        if self.phase != Phase::Closed {
            self.buf.extend(bytes);
        }
    }

    /// The STARTTLS handshake is done: forget the cleartext phase, EHLO again.
    pub(super) fn tls_established(&mut self) {
        if self.phase == Phase::TlsPending {
            self.buf.clear();
            self.tls_done = true;
            self.send_ehlo();
        } else {
            self.fail(SmtpError::Misuse("tls_established() without STARTTLS"));
        }
    }

    pub(super) fn write(&mut self, bytes: Vec<u8>) {
        self.queue.push_back(Step::Io(Io::Write(bytes)));
    }

    /// Ends with an event. `leftover` is what the server sent after the last reply.
    pub(super) fn finish(&mut self, event: impl FnOnce(Vec<u8>) -> Ev) {
        let leftover = self.buf.take();
        self.queue.push_back(Step::Event(event(leftover)));
        self.phase = Phase::Finished;
    }

    pub(super) fn fail(&mut self, e: SmtpError) {
        self.queue.push_back(Step::Error(e));
        self.buf.clear();
        self.phase = Phase::Closed;
    }

    /// Runs the queue and the opening until the owner has something to act on.
    pub(super) fn poll(&mut self) -> Result<Progress<Ev>, Interrupt<SmtpError>> {
        loop {
            if let Some(step) = self.queue.pop_front() {
                return match step {
                    Step::Io(io) => Err(io.into()),
                    Step::Event(ev) => Ok(Progress::Event(ev)),
                    Step::Error(e) => Err(Interrupt::Error(e)),
                };
            }
            match self.phase {
                Phase::Closed => return Err(Io::Close.into()),
                Phase::Finished => {
                    return Err(Interrupt::Error(SmtpError::Misuse(
                        "machine already finished",
                    )));
                }
                Phase::TlsPending if !self.buf.is_empty() => {
                    self.fail(SmtpError::StartTlsInjection);
                    continue;
                }
                Phase::TlsPending => {
                    return Err(Interrupt::Error(SmtpError::Misuse(
                        "next() called before tls_established()",
                    )));
                }
                _ => {}
            }
            let reply = match self.read_reply() {
                Ok(Some(reply)) => reply,
                Ok(None) => return Err(Io::NeedInput.into()),
                Err(e) => {
                    self.fail(e);
                    continue;
                }
            };
            if reply.code == 421 {
                self.fail(UpstreamAuthError::Unavailable(reply.text()).into());
                continue;
            }
            match self.phase {
                Phase::Greeting => self.greeting(reply),
                Phase::Ehlo => {
                    if let Some(extensions) = self.ehlo_reply(reply) {
                        return Ok(Progress::Ready(extensions));
                    }
                }
                Phase::StartTls => self.starttls_reply(reply),
                _ => return Ok(Progress::Reply(reply)),
            }
        }
    }

    /// Reads the lines of one reply. `Ok(None)`: more input needed.
    fn read_reply(&mut self) -> Result<Option<Reply>, SmtpError> {
        loop {
            let n = match find_line(self.buf.as_slice(), self.max_line) {
                LineStatus::NeedMore => return Ok(None),
                LineStatus::TooLong => return Err(SmtpError::LineTooLong(self.max_line)),
                LineStatus::Line(n) => n,
            };
            let Ok((_, line)) = parse::reply_line(&self.buf.as_slice()[..n]) else {
                return Err(protocol("unparsable server reply"));
            };
            let (code, last) = (line.code, line.last);
            let text = String::from_utf8_lossy(line.text).trim_end().to_owned();
            self.buf.consume(n);
            self.partial_size += n;
            if self.partial_size > self.max_line {
                return Err(SmtpError::ReplyTooLong(self.max_line));
            }
            let reply = self.partial.get_or_insert_with(|| Reply {
                code,
                lines: Vec::new(),
            });
            if reply.code != code {
                return Err(protocol("reply code changed within a multi-line reply"));
            }
            reply.lines.push(text);
            if last {
                self.partial_size = 0;
                return Ok(self.partial.take());
            }
        }
    }

    fn send_ehlo(&mut self) {
        self.write(encode::ehlo(&self.ehlo_domain));
        self.phase = Phase::Ehlo;
    }

    fn greeting(&mut self, reply: Reply) {
        match reply.code {
            220 => self.send_ehlo(),
            554 => self.fail(UpstreamAuthError::Unavailable(reply.text()).into()),
            _ => self.fail(protocol("unexpected server greeting")),
        }
    }

    /// The extensions once known; `None` while STARTTLS is still to come (or failed).
    fn ehlo_reply(&mut self, reply: Reply) -> Option<Vec<String>> {
        match reply.code {
            250 => {}
            400..=499 => {
                self.fail(UpstreamAuthError::Unavailable(reply.text()).into());
                return None;
            }
            500..=599 => {
                self.fail(protocol(format!("EHLO refused: {}", reply.text())));
                return None;
            }
            _ => {
                self.fail(protocol("unexpected reply to EHLO"));
                return None;
            }
        }
        let extensions: Vec<String> = reply.lines.into_iter().skip(1).collect();
        if self.tls == UpstreamTls::StartTls && !self.tls_done {
            if extensions.iter().any(|e| parse::is_keyword(e, "STARTTLS")) {
                self.write(encode::STARTTLS.to_vec());
                self.phase = Phase::StartTls;
            } else {
                self.fail(UpstreamAuthError::StartTlsUnavailable.into());
            }
            return None;
        }
        self.phase = Phase::Open;
        Some(extensions)
    }

    fn starttls_reply(&mut self, reply: Reply) {
        if reply.code != 220 {
            self.fail(UpstreamAuthError::StartTlsUnavailable.into());
        } else if !self.buf.is_empty() {
            self.fail(SmtpError::StartTlsInjection);
        } else {
            self.queue.push_back(Step::Io(Io::StartTls));
            self.phase = Phase::TlsPending;
        }
    }
}
