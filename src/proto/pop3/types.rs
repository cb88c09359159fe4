//! POP3 types: the borrowed command and response shapes the parsers produce, the
//! events and errors the machines hand to the session.
//!
//! Parsed values borrow from the input buffer (`&[u8]`). Anything that may carry a
//! password (the PASS argument, a SASL response) is [`Sensitive`]: its `Debug` prints
//! only the length.

use crate::proto::UpstreamAuthError;

pub use crate::proto::LoginRejection;
/// Bytes that may hold a secret; the same wrapper as IMAP's.
pub use crate::proto::imap::types::Sensitive;

/// One complete client command (RFC 1939, 2449, 2595, 5034). Keywords are
/// case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Capa,
    Quit,
    Stls,
    /// `USER name`: the name is the rest of the line.
    User(&'a [u8]),
    /// `PASS secret`: the secret is the rest of the line (it may contain spaces, and
    /// may be empty).
    Pass(Sensitive<'a>),
    /// `AUTH [mechanism [initial-response]]`; an initial response of `=` is parsed
    /// as `Some` of an empty slice.
    Auth {
        mechanism: Option<&'a [u8]>,
        initial_response: Option<Sensitive<'a>>,
    },
    /// `APOP name digest` (arguments ignored: we never offer it).
    Apop,
    /// A command we do not run before login (STAT, RETR, NOOP, unknown words...).
    Other {
        name: &'a [u8],
    },
}

/// Status indicator of a server response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Err,
}

/// One server response line (the first line of a multi-line response included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// `+OK [code] text` / `-ERR [code] text`; `code` is the text between the
    /// brackets of an RFC 2449 response code (`SYS/TEMP`, `AUTH`, `IN-USE`...).
    Status {
        status: Status,
        code: Option<&'a [u8]>,
        text: &'a [u8],
    },
    /// `+ text`: a SASL continuation (text may be empty).
    Continuation(&'a [u8]),
}

/// One line of a multi-line response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLine<'a> {
    /// A line, its dot-stuffing removed.
    Line(&'a [u8]),
    /// The terminating `.` line.
    End,
}

/// The downstream and upstream events are shared by all protocols.
pub use crate::proto::{DownstreamEvent, UpstreamEvent};

/// Errors of the POP3 machines. Safe to display: never contains client secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Pop3Error {
    /// The client sent bytes after STLS, before the TLS handshake (command injection
    /// attempt, CVE-2011-0411 class). The connection must be closed.
    #[error("client pipelined data after STLS; closing")]
    StartTlsPipelining,
    /// The server sent bytes after its STLS `+OK`, before the handshake (response
    /// injection). The connection must be closed.
    #[error("upstream sent data after its STLS reply; closing")]
    StartTlsInjection,
    /// A server line exceeded the upstream line limit.
    #[error("upstream sent a line longer than {0} bytes")]
    LineTooLong(usize),
    /// The upstream login failed.
    #[error(transparent)]
    Auth(#[from] UpstreamAuthError),
    /// The machine was driven out of order (a bug in the driver or session).
    #[error("POP3 machine misuse: {0}")]
    Misuse(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = Command::Pass(Sensitive(b"hunter2 x"));
        assert_eq!(format!("{c:?}"), "Pass(Sensitive(9 bytes))");
        let c = Command::Auth {
            mechanism: Some(b"PLAIN"),
            initial_response: Some(Sensitive(b"AGFAAGI=")),
        };
        assert!(!format!("{c:?}").contains("AGFAAGI"));
    }

    #[test]
    fn errors_display() {
        let rows: Vec<(Pop3Error, &str)> = vec![
            (
                Pop3Error::StartTlsPipelining,
                "client pipelined data after STLS; closing",
            ),
            (
                Pop3Error::LineTooLong(65536),
                "upstream sent a line longer than 65536 bytes",
            ),
            (
                UpstreamAuthError::Unavailable("later".into()).into(),
                "upstream temporarily unable to authenticate: later",
            ),
        ];
        for (e, expected) in rows {
            assert_eq!(e.to_string(), expected);
        }
    }
}
