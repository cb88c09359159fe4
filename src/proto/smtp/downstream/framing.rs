//! Framing: how the buffered bytes become complete commands, SASL responses, and
//! skipped BDAT chunks.

use super::{Kind, SmtpDownstream, State};
use crate::proto::line::{LineStatus, find_line, strip_eol};
use crate::proto::smtp::encode;
use crate::proto::smtp::types::SmtpError;
use crate::proto::{CloseReason, Interrupt, Io};

impl SmtpDownstream {
    /// One step of work. `Ok(false)`: nothing to do without more input.
    pub(super) fn advance(&mut self) -> Result<bool, Interrupt<SmtpError>> {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Greeting => {
                self.state = State::Command;
                self.write(encode::greeting(&self.hostname));
            }
            State::Command => return Ok(self.frame()),
            State::Sasl(step) => match find_line(self.buf.as_slice(), self.limits.max_sasl) {
                LineStatus::NeedMore => {
                    self.state = State::Sasl(step);
                    return Ok(false);
                }
                LineStatus::TooLong => {
                    self.state = State::Discard;
                    self.reply(
                        encode::reply(500, "5.5.6", "Authentication Exchange line is too long"),
                        Kind::Refusal,
                    );
                }
                LineStatus::Line(n) => {
                    let action = self.sasl_response(step, strip_eol(&self.buf.as_slice()[..n]));
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
            State::Skip { remaining, reply } => {
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(self.buf.len());
                self.buf.consume(n);
                let remaining = remaining - n as u64;
                if remaining > 0 {
                    self.state = State::Skip { remaining, reply };
                    return Ok(false);
                }
                self.state = State::Command;
                self.reply(reply, Kind::Refusal);
            }
            State::Decision => {
                self.state = State::Decision;
                return Err(Interrupt::Error(SmtpError::Misuse(
                    "next() called before accept() or reject()",
                )));
            }
            State::TlsPending if !self.buf.is_empty() => self.fail(SmtpError::StartTlsPipelining),
            State::TlsPending => {
                self.state = State::TlsPending;
                return Err(Interrupt::Error(SmtpError::Misuse(
                    "next() called before tls_established()",
                )));
            }
            State::Finished => {
                self.state = State::Finished;
                return Err(Interrupt::Error(SmtpError::Misuse(
                    "login already finished",
                )));
            }
            State::Closed => return Err(Io::Close.into()),
        }
        Ok(true)
    }

    /// Frames and answers the next command line. Returns `false` if more input is
    /// needed.
    fn frame(&mut self) -> bool {
        let n = match find_line(self.buf.as_slice(), self.limits.max_line) {
            LineStatus::NeedMore => {
                self.state = State::Command;
                return false;
            }
            LineStatus::TooLong => {
                self.out.limit_hit(CloseReason::LineTooLong);
                self.close_with(encode::reply(500, "5.5.0", "Line too long"));
                return true;
            }
            LineStatus::Line(n) => n,
        };
        let last = n == self.buf.len();
        let action = self.decide(&self.buf.as_slice()[..n], last);
        self.buf.consume(n);
        self.apply(action);
        true
    }
}
