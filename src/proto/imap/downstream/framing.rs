//! Framing: how the buffered bytes become complete commands (lines, literals, skipped
//! literals of refused commands, SASL response lines).

use super::{ImapDownstream, Kind, State};
use crate::proto::imap::encode::{self, tagged, untagged};
use crate::proto::imap::parse;
use crate::proto::imap::types::ImapError;
use crate::proto::line::{LineStatus, find_line, strip_eol};
use crate::proto::{CloseReason, Interrupt, Io};

use super::respond::Action;

impl ImapDownstream {
    /// One step of work. `Ok(false)`: nothing to do without more input.
    pub(super) fn advance(&mut self) -> Result<bool, Interrupt<ImapError>> {
        let limits = self.limits;
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Greeting => {
                self.state = State::Command { framed: 0 };
                self.write(encode::greeting(&self.capabilities()));
            }
            State::Command { framed } => return Ok(self.frame(framed)),
            State::Literal { end } => {
                self.state = if self.buf.len() >= end {
                    State::Command { framed: end }
                } else {
                    State::Literal { end }
                };
                return Ok(matches!(self.state, State::Command { .. }));
            }
            State::Skip { remaining, reply } => {
                let n = remaining.min(self.buf.len());
                self.buf.consume(n);
                let remaining = remaining - n;
                self.state = if remaining == 0 {
                    State::SkipLine { reply }
                } else {
                    State::Skip { remaining, reply }
                };
                return Ok(remaining == 0);
            }
            State::SkipLine { reply } => match find_line(self.buf.as_slice(), limits.max_line) {
                LineStatus::NeedMore => {
                    self.state = State::SkipLine { reply };
                    return Ok(false);
                }
                LineStatus::TooLong => {
                    self.out.limit_hit(CloseReason::LineTooLong);
                    self.close_with(reply)
                }
                LineStatus::Line(n) => {
                    let literal = parse::trailing_literal(&self.buf.as_slice()[..n]);
                    self.buf.consume(n);
                    match literal {
                        Some((len, false)) if len <= limits.max_literal => {
                            self.state = State::Skip {
                                remaining: len,
                                reply,
                            }
                        }
                        Some((_, false)) => self.close_with(reply),
                        _ => {
                            self.state = State::Command { framed: 0 };
                            self.reply(reply, Kind::Refusal);
                        }
                    }
                }
            },
            State::Discard => match self.buf.as_slice().iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.buf.consume(i + 1);
                    self.state = State::Command { framed: 0 };
                }
                None => {
                    self.buf.clear();
                    self.state = State::Discard;
                    return Ok(false);
                }
            },
            State::Sasl { tag } => match find_line(self.buf.as_slice(), limits.max_sasl) {
                LineStatus::NeedMore => {
                    self.state = State::Sasl { tag };
                    return Ok(false);
                }
                LineStatus::TooLong => {
                    self.state = State::Discard;
                    self.reply(
                        tagged(&tag, "BAD", None, "SASL response too long"),
                        Kind::Refusal,
                    );
                }
                LineStatus::Line(n) => {
                    let action = match strip_eol(&self.buf.as_slice()[..n]) {
                        b"*" => Action::Reply(
                            tagged(&tag, "BAD", None, "Authentication cancelled"),
                            Kind::Refusal,
                        ),
                        line => self.plain(&tag, line),
                    };
                    self.buf.consume(n);
                    self.apply(action);
                }
            },
            State::Decision { tag } => {
                self.state = State::Decision { tag };
                return Err(Interrupt::Error(ImapError::Misuse(
                    "next() called before accept() or reject()",
                )));
            }
            State::TlsPending if !self.buf.is_empty() => self.fail(ImapError::StartTlsPipelining),
            State::TlsPending => {
                self.state = State::TlsPending;
                return Err(Interrupt::Error(ImapError::Misuse(
                    "next() called before tls_established()",
                )));
            }
            State::Finished => {
                self.state = State::Finished;
                return Err(Interrupt::Error(ImapError::Misuse(
                    "login already finished",
                )));
            }
            State::Closed => return Err(Io::Close.into()),
        }
        Ok(true)
    }

    /// Frames the next line of the current command. Returns `false` if more input is
    /// needed.
    fn frame(&mut self, framed: usize) -> bool {
        let end = match find_line(&self.buf.as_slice()[framed..], self.limits.max_line) {
            LineStatus::NeedMore => {
                self.state = State::Command { framed };
                return false;
            }
            LineStatus::TooLong => {
                self.out.limit_hit(CloseReason::LineTooLong);
                self.close_with(untagged("BAD Line too long"));
                return true;
            }
            LineStatus::Line(n) => framed + n,
        };
        match parse::trailing_literal(&self.buf.as_slice()[framed..end]) {
            None => {
                let last = end == self.buf.len();
                let action = self.decide(&self.buf.as_slice()[..end], last);
                self.buf.consume(end);
                self.apply(action);
            }
            Some((len, sync)) => self.literal_announced(end, len, sync),
        }
        true
    }

    /// A line of the current command (ending at `end`) announced a literal.
    fn literal_announced(&mut self, end: usize, len: usize, sync: bool) {
        let cmd = &self.buf.as_slice()[..end];
        let refusal = match (parse::command(cmd), parse::command_head(cmd)) {
            (Err(nom::Err::Incomplete(_)), Ok((_, (tag, name))))
                if name.eq_ignore_ascii_case(b"LOGIN") && self.login_allowed() =>
            {
                (len > self.limits.max_literal)
                    .then(|| tagged(tag, "BAD", None, "Literal too large"))
            }
            _ => Some(self.refusal(cmd)),
        };
        match refusal {
            None => {
                if sync {
                    self.write(encode::CONTINUE_LITERAL.to_vec());
                }
                self.state = State::Literal { end: end + len };
            }
            // The client waits for "+" and gets the tagged reply instead.
            Some(reply) if sync => {
                self.buf.consume(end);
                self.state = State::Command { framed: 0 };
                self.reply(reply, Kind::Refusal);
            }
            Some(mut reply) if len > self.limits.max_literal => {
                self.out.limit_hit(CloseReason::LiteralTooLong);
                reply.extend(untagged("BYE Literal too large"));
                self.close_with(reply);
            }
            Some(reply) => {
                self.buf.consume(end);
                self.state = State::Skip {
                    remaining: len,
                    reply,
                };
            }
        }
    }
}
