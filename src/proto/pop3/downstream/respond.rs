//! What the machine answers to one complete command line.

use super::{Kind, Pop3Downstream};
use crate::proto::line::strip_eol;
use crate::proto::pop3::encode::{self, err, ok};
use crate::proto::pop3::parse;
use crate::proto::pop3::types::Command;
use crate::proto::{Credentials, LocalTls, sasl};

/// Commands of the TRANSACTION state (RFC 1939, 2449): "log in first". NOOP is one of
/// them: it is not valid in the AUTHORIZATION state.
const NEEDS_LOGIN: &[&[u8]] = &[
    b"STAT", b"LIST", b"RETR", b"DELE", b"NOOP", b"RSET", b"TOP", b"UIDL", b"LAST",
];

/// Commands this machine parses itself.
const KNOWN: &[&[u8]] = &[
    b"CAPA", b"QUIT", b"STLS", b"USER", b"PASS", b"AUTH", b"APOP",
];

/// Login commands: refused before a required STLS.
const AUTH_COMMANDS: &[&[u8]] = &[b"USER", b"PASS", b"AUTH"];

const APOP_REFUSED: &str = "APOP not supported; use USER/PASS or AUTH PLAIN";

pub(super) enum Action {
    Reply(Vec<u8>, Kind),
    /// USER accepted: remember the name for PASS.
    User(String),
    Quit,
    StartTls,
    StartTlsPipelined,
    Login(Credentials),
    SaslContinue,
}

impl Pop3Downstream {
    /// `-ERR [SYS/PERM] STLS required` (RFC 3206): a login before the required STLS.
    fn stls_required() -> Vec<u8> {
        err(Some("SYS/PERM"), "STLS required")
    }

    /// The reply to a command we will not run (or cannot parse).
    fn refusal(&self, line: &[u8]) -> Vec<u8> {
        let Ok((_, name)) = parse::keyword(line) else {
            return match strip_eol(line) {
                b"" => err(None, "Empty command line"),
                _ => err(None, "Syntax error"),
            };
        };
        let name = name.to_ascii_uppercase();
        if AUTH_COMMANDS.contains(&name.as_slice()) && !self.login_allowed() {
            Self::stls_required()
        } else if name == b"APOP" {
            err(None, APOP_REFUSED)
        } else if NEEDS_LOGIN.contains(&name.as_slice()) {
            err(None, "Log in first")
        } else if KNOWN.contains(&name.as_slice()) {
            err(None, "Invalid arguments")
        } else {
            err(None, "Unknown command")
        }
    }

    /// What to do about one complete command line (`last`: nothing follows it yet).
    pub(super) fn decide(&self, line: &[u8], last: bool) -> Action {
        let Ok((_, cmd)) = parse::command(line) else {
            return Action::Reply(self.refusal(line), Kind::Refusal);
        };
        match cmd {
            Command::Capa => Action::Reply(
                encode::multiline(ok("Capability list follows"), &self.capabilities()),
                Kind::Fine,
            ),
            Command::Quit => Action::Quit,
            Command::Stls => match self.tls {
                LocalTls::StartTlsRequired if !last => Action::StartTlsPipelined,
                LocalTls::StartTlsRequired => Action::StartTls,
                LocalTls::Active => {
                    Action::Reply(err(None, "TLS is already active"), Kind::Refusal)
                }
                LocalTls::None => Action::Reply(err(None, "STLS is not available"), Kind::Refusal),
            },
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } if !self.login_allowed() => {
                Action::Reply(self.refusal(line), Kind::Refusal)
            }
            Command::Apop => Action::Reply(err(None, APOP_REFUSED), Kind::Refusal),
            Command::User(name) => match std::str::from_utf8(name) {
                Ok(name) => Action::User(name.to_owned()),
                Err(_) => Action::Reply(err(None, "User name must be UTF-8"), Kind::Refusal),
            },
            Command::Pass(password) => {
                let Some(username) = self.user.clone() else {
                    return Action::Reply(err(None, "Send USER first"), Kind::Refusal);
                };
                match sasl::secret_from_utf8(password.0) {
                    Ok(password) => Action::Login(Credentials {
                        authzid: None,
                        username,
                        password,
                    }),
                    Err(_) => Action::Reply(err(None, "Password must be UTF-8"), Kind::Refusal),
                }
            }
            Command::Auth {
                mechanism: None, ..
            } => Action::Reply(encode::multiline(ok(""), &["PLAIN"]), Kind::Fine),
            Command::Auth {
                mechanism: Some(m), ..
            } if !m.eq_ignore_ascii_case(b"PLAIN") => Action::Reply(
                err(None, "Unsupported authentication mechanism"),
                Kind::Refusal,
            ),
            Command::Auth {
                initial_response, ..
            } => match initial_response {
                None => Action::SaslContinue,
                Some(ir) => self.plain(ir.0),
            },
            Command::Other { .. } => Action::Reply(self.refusal(line), Kind::Refusal),
        }
    }

    /// Decodes a base64 PLAIN response into a login.
    pub(super) fn plain(&self, b64: &[u8]) -> Action {
        if b64.len() > self.limits.max_sasl {
            return Action::Reply(err(None, "SASL response too long"), Kind::Refusal);
        }
        match sasl::decode_plain(b64) {
            Ok(creds) => Action::Login(creds),
            Err(e) => Action::Reply(
                err(None, &format!("Invalid SASL PLAIN response: {e}")),
                Kind::Refusal,
            ),
        }
    }
}
