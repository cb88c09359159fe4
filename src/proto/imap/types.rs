//! IMAP types: the borrowed command and response shapes the parsers produce, the
//! events and errors the machines hand to the session.
//!
//! Parsed values borrow from the input buffer (`&[u8]`). Anything that may carry a
//! password (a LOGIN argument, a SASL response) has a `Debug` that prints only its kind
//! and length.

use std::borrow::Cow;
use std::fmt;

use crate::proto::UpstreamAuthError;

/// An `astring` argument as it appeared on the wire (RFC 3501 / 9051).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AString<'a> {
    /// A bare atom.
    Atom(&'a [u8]),
    /// The bytes between the quotes, escapes (`\\`, `\"`) still in place.
    Quoted(&'a [u8]),
    /// The literal's data.
    Literal(&'a [u8]),
}

impl<'a> AString<'a> {
    /// The value, with quoted-string escapes removed.
    pub fn to_bytes(&self) -> Cow<'a, [u8]> {
        match *self {
            AString::Atom(b) | AString::Literal(b) => Cow::Borrowed(b),
            AString::Quoted(b) if !b.contains(&b'\\') => Cow::Borrowed(b),
            AString::Quoted(b) => {
                let mut out = Vec::with_capacity(b.len());
                let mut escaped = false;
                for &c in b {
                    if escaped || c != b'\\' {
                        out.push(c);
                        escaped = false;
                    } else {
                        escaped = true;
                    }
                }
                Cow::Owned(out)
            }
        }
    }
}

impl fmt::Debug for AString<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, len) = match self {
            AString::Atom(b) => ("Atom", b.len()),
            AString::Quoted(b) => ("Quoted", b.len()),
            AString::Literal(b) => ("Literal", b.len()),
        };
        write!(f, "{kind}({len} bytes)")
    }
}

/// Bytes that may hold a secret (a SASL response); `Debug` shows only the length.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sensitive<'a>(pub &'a [u8]);

impl fmt::Debug for Sensitive<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sensitive({} bytes)", self.0.len())
    }
}

/// One complete client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    pub tag: &'a [u8],
    pub body: CommandBody<'a>,
}

/// The commands the pre-login machine knows; everything else is [`CommandBody::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody<'a> {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// `ID` with its (ignored) parameter list.
    Id,
    Login {
        username: AString<'a>,
        password: AString<'a>,
    },
    Authenticate {
        mechanism: &'a [u8],
        /// SASL-IR initial response (base64); `=` is parsed as `Some` of an empty slice.
        initial_response: Option<Sensitive<'a>>,
    },
    /// A command we do not run before login (SELECT, FETCH, unknown words...).
    Other {
        name: &'a [u8],
    },
}

/// Status of a server response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

/// A response code: `[NAME args]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code<'a> {
    pub name: &'a [u8],
    pub args: Option<&'a [u8]>,
}

/// One server response line (literals in untagged data are skipped by the machine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// `* OK/NO/BAD/PREAUTH/BYE [code] text` (tag `None`) or `TAG OK/NO/BAD [code] text`.
    Status {
        tag: Option<&'a [u8]>,
        status: Status,
        code: Option<Code<'a>>,
        text: &'a [u8],
    },
    /// `* CAPABILITY ...`: the capability list.
    Capability(&'a [u8]),
    /// `+ text` (text may be empty).
    Continuation(&'a [u8]),
    /// Untagged data we do not use.
    OtherUntagged,
}

/// The downstream and upstream events are shared by all protocols.
pub use crate::proto::{DownstreamEvent, UpstreamEvent};

/// Why the session refuses a login (see [`super::ImapDownstream::reject`]): shared by
/// all protocols. IMAP answers `NO [AUTHENTICATIONFAILED] Authentication failed.`,
/// `NO [AUTHENTICATIONFAILED] <message>` and `NO [UNAVAILABLE] <message>`.
pub use crate::proto::LoginRejection;

/// Errors of the IMAP machines. Safe to display: never contains client secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapError {
    /// The client sent bytes after STARTTLS, before the TLS handshake (command
    /// injection attempt, CVE-2011-0411 class). The connection must be closed.
    #[error("client pipelined data after STARTTLS; closing")]
    StartTlsPipelining,
    /// The server sent bytes after its STARTTLS OK, before the handshake (response
    /// injection). The connection must be closed.
    #[error("upstream sent data after its STARTTLS reply; closing")]
    StartTlsInjection,
    /// A server line exceeded the upstream line limit.
    #[error("upstream sent a line longer than {0} bytes")]
    LineTooLong(usize),
    /// The upstream login failed.
    #[error(transparent)]
    Auth(#[from] UpstreamAuthError),
    /// The machine was driven out of order (a bug in the driver or session).
    #[error("IMAP machine misuse: {0}")]
    Misuse(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn astring_to_bytes_table() {
        let rows: &[(AString<'_>, &[u8])] = &[
            (AString::Atom(b"abc"), b"abc"),
            (AString::Quoted(b""), b""),
            (AString::Quoted(b"a b"), b"a b"),
            (AString::Quoted(br#"a\"b"#), br#"a"b"#),
            (AString::Quoted(br"a\\b"), br"a\b"),
            (AString::Quoted(br#"\\\""#), br#"\""#),
            (AString::Literal(b"x\\y\r\n"), b"x\\y\r\n"),
        ];
        for (input, expected) in rows {
            assert_eq!(&input.to_bytes()[..], *expected);
        }
    }

    #[test]
    fn debug_never_shows_values() {
        let s = format!("{:?}", AString::Quoted(b"hunter2"));
        assert_eq!(s, "Quoted(7 bytes)");
        let c = CommandBody::Authenticate {
            mechanism: b"PLAIN",
            initial_response: Some(Sensitive(b"AGFAAGI=")),
        };
        assert!(!format!("{c:?}").contains("AGFAAGI"));
    }
}
