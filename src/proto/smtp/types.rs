//! SMTP types: the borrowed command and reply-line shapes the parsers produce, the
//! owned replies the client-role machines assemble, and the events and errors the
//! machines hand to the session.
//!
//! Parsed values borrow from the input buffer (`&[u8]`). Anything that may carry a
//! password (a SASL response) has a `Debug` that prints only its length.

use std::fmt;

use crate::proto::UpstreamAuthError;

/// Bytes that may hold a secret (a SASL response); `Debug` shows only the length.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sensitive<'a>(pub &'a [u8]);

impl fmt::Debug for Sensitive<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sensitive({} bytes)", self.0.len())
    }
}

/// One complete client command (RFC 5321 / 3207 / 4954 / 3030), as far as the
/// pre-login machine cares; everything else is [`Command::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `EHLO domain` (the domain or address literal as sent).
    Ehlo(&'a [u8]),
    /// `HELO domain`.
    Helo(&'a [u8]),
    StartTls,
    Auth {
        mechanism: &'a [u8],
        /// The initial response (base64); `=` is parsed as `Some` of an empty slice.
        initial_response: Option<Sensitive<'a>>,
    },
    /// `NOOP [text]`.
    Noop,
    Rset,
    Quit,
    /// `HELP [topic]`.
    Help,
    /// `VRFY text`.
    Vrfy,
    /// `EXPN text`.
    Expn,
    /// `MAIL FROM:...` (arguments not parsed).
    Mail,
    /// `RCPT TO:...` (arguments not parsed).
    Rcpt,
    Data,
    /// `BDAT size [LAST]`: `size` bytes of message data follow the line at once
    /// (saturated at `u64::MAX`).
    Bdat {
        size: u64,
        last: bool,
    },
    /// A command we do not know (ETRN, TURN, unknown words...).
    Other {
        name: &'a [u8],
    },
}

/// One line of a server reply: `code` then `-` (more lines follow) or SP / nothing
/// (the last line), then the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    pub code: u16,
    /// `false` for `NNN-text` continuation lines.
    pub last: bool,
    pub text: &'a [u8],
}

/// An enhanced status code (RFC 3463): `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete (possibly multi-line) server reply, owned.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// The text of every line (lossy UTF-8, trailing white space removed).
    pub lines: Vec<String>,
}

impl Reply {
    /// The first line's text without its enhanced status code: what we quote in
    /// errors. Control characters are replaced; at most 300 characters.
    pub fn text(&self) -> String {
        let first = self.lines.first().map(String::as_str).unwrap_or_default();
        let rest = match super::parse::enhanced_code(first.as_bytes()) {
            Ok((rest, _)) => &first[first.len() - rest.len()..],
            Err(_) => first,
        };
        super::encode::sanitize(rest)
    }
}

/// `Debug` shows the code and the number of lines only: a `334` challenge or a
/// server's text is no business of a log line.
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({}, {} lines)", self.code, self.lines.len())
    }
}

/// The downstream and upstream events are shared by all protocols.
pub use crate::proto::{DownstreamEvent, UpstreamEvent};

/// The probe machine's result.
#[derive(Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    /// The server's EHLO keywords with their parameters (e.g. `SIZE 35882577`,
    /// `AUTH PLAIN XOAUTH2`), learned over TLS when STARTTLS is required; in the
    /// server's order, the first line of the EHLO reply (its host name) left out.
    Extensions(Vec<String>),
}

/// Errors of the SMTP machines. Safe to display: never contains client secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpError {
    /// The client sent bytes after STARTTLS, before the TLS handshake (command
    /// injection attempt, CVE-2011-0411 class). The connection must be closed.
    #[error("client pipelined data after STARTTLS; closing")]
    StartTlsPipelining,
    /// The server sent bytes after its `220` to STARTTLS, before the handshake
    /// (response injection). The connection must be closed.
    #[error("upstream sent data after its STARTTLS reply; closing")]
    StartTlsInjection,
    /// A server line exceeded the upstream line limit.
    #[error("upstream sent a line longer than {0} bytes")]
    LineTooLong(usize),
    /// A multi-line server reply exceeded the upstream line limit in total.
    #[error("upstream sent a reply longer than {0} bytes")]
    ReplyTooLong(usize),
    /// The upstream login (or the probe) failed.
    #[error(transparent)]
    Auth(#[from] UpstreamAuthError),
    /// The machine was driven out of order (a bug in the driver or session).
    #[error("SMTP machine misuse: {0}")]
    Misuse(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_text_drops_the_enhanced_code() {
        let rows = [
            (vec!["4.7.0 Temporary failure"], "Temporary failure"),
            (vec!["5.7.8 a\r\nb", "second"], "a  b"),
            (vec!["2.0.0"], ""),
            (vec!["Ready"], "Ready"),
            (vec!["4.7.0x no code"], "4.7.0x no code"),
            (vec![], ""),
        ];
        for (lines, expected) in rows {
            let r = Reply {
                code: 454,
                lines: lines.into_iter().map(str::to_owned).collect(),
            };
            assert_eq!(r.text(), expected);
        }
    }

    #[test]
    fn debug_never_shows_values() {
        let c = Command::Auth {
            mechanism: b"PLAIN",
            initial_response: Some(Sensitive(b"AGFAAGI=")),
        };
        assert!(!format!("{c:?}").contains("AGFAAGI"));
        let r = Reply {
            code: 334,
            lines: vec!["eyJzdGF0dXMiOiI0MDEifQ==".into()],
        };
        assert_eq!(format!("{r:?}"), "Reply(334, 1 lines)");
    }

    #[test]
    fn enhanced_code_display() {
        let c = EnhancedCode {
            class: 5,
            subject: 7,
            detail: 8,
        };
        assert_eq!(c.to_string(), "5.7.8");
    }
}
