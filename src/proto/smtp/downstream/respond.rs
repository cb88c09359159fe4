//! What the machine answers to one complete command or SASL response.

use super::{Kind, Sasl, SmtpDownstream};
use crate::proto::smtp::encode::{self, reply};
use crate::proto::smtp::parse;
use crate::proto::smtp::types::Command;
use crate::proto::{Credentials, LocalTls, sasl};

/// Commands of a mail transaction: "authenticate first".
const NEEDS_AUTH: &[&[u8]] = &[b"MAIL", b"RCPT", b"DATA", b"BDAT"];

/// The syntax hint of each command we parse, for `501 5.5.4 Syntax: ...`.
const SYNTAX: &[(&[u8], &str)] = &[
    (b"EHLO", "EHLO domain"),
    (b"HELO", "HELO domain"),
    (b"STARTTLS", "STARTTLS"),
    (b"AUTH", "AUTH mechanism [initial-response]"),
    (b"NOOP", "NOOP [text]"),
    (b"RSET", "RSET"),
    (b"QUIT", "QUIT"),
    (b"HELP", "HELP [topic]"),
    (b"VRFY", "VRFY address"),
    (b"EXPN", "EXPN list"),
];

pub(super) enum Action {
    Reply(Vec<u8>, Kind),
    /// EHLO / HELO: remember the client's domain, send the reply.
    Greeted {
        domain: String,
        reply: Vec<u8>,
    },
    Quit,
    StartTls,
    StartTlsPipelined,
    Login(Credentials),
    /// Send a `334` and wait for the client's response.
    SaslContinue(&'static [u8], Sasl),
    /// A refused BDAT: skip its chunk, then send `reply`.
    SkipChunk {
        size: u64,
        reply: Vec<u8>,
    },
    /// Send these bytes and close.
    Close(Vec<u8>),
}

fn refuse(code: u16, enhanced: &str, text: &str) -> Action {
    Action::Reply(reply(code, enhanced, text), Kind::Refusal)
}

fn fine(code: u16, enhanced: &str, text: &str) -> Action {
    Action::Reply(reply(code, enhanced, text), Kind::Fine)
}

/// The `501` for a SASL message we cannot use (never quotes the message).
fn sasl_refusal(e: sasl::SaslError) -> Action {
    let text = match e {
        sasl::SaslError::Base64 => "Invalid base64",
        sasl::SaslError::Malformed => "Invalid PLAIN message",
        sasl::SaslError::Utf8 => "Invalid UTF-8",
        sasl::SaslError::EmptyUsername => "Empty user name",
    };
    refuse(501, "5.5.2", text)
}

impl SmtpDownstream {
    /// `530` for a mail transaction before AUTH (or before the required STARTTLS).
    fn auth_required(&self) -> Vec<u8> {
        if self.login_allowed() {
            reply(530, "5.7.0", "Authentication required")
        } else {
            reply(530, "5.7.0", "Must issue a STARTTLS command first")
        }
    }

    /// The reply to a line we cannot parse.
    fn refusal(&self, line: &[u8]) -> Action {
        let Ok((_, verb)) = parse::verb(line) else {
            return refuse(500, "5.5.2", "Syntax error");
        };
        let verb = verb.to_ascii_uppercase();
        if NEEDS_AUTH.contains(&verb.as_slice()) {
            return Action::Reply(self.auth_required(), Kind::Refusal);
        }
        match SYNTAX.iter().find(|(v, _)| *v == verb.as_slice()) {
            Some((_, hint)) => refuse(501, "5.5.4", &format!("Syntax: {hint}")),
            None => refuse(500, "5.5.1", "Unknown command"),
        }
    }

    /// What to do about one complete command line (`last`: nothing follows it yet).
    pub(super) fn decide(&self, line: &[u8], last: bool) -> Action {
        let Ok((_, cmd)) = parse::command(line) else {
            return self.refusal(line);
        };
        match cmd {
            Command::Ehlo(domain) | Command::Helo(domain) => {
                // The parser only accepts UTF-8 domains.
                let domain = String::from_utf8_lossy(domain).into_owned();
                let reply = if matches!(cmd, Command::Ehlo(_)) {
                    encode::ehlo_reply(&self.hostname, &self.extension_lines())
                } else {
                    encode::multiline(250, &[&self.hostname])
                };
                Action::Greeted { domain, reply }
            }
            Command::StartTls => match self.tls {
                LocalTls::StartTlsRequired if !last => Action::StartTlsPipelined,
                LocalTls::StartTlsRequired => Action::StartTls,
                LocalTls::Active => refuse(503, "5.5.1", "TLS already active"),
                LocalTls::None => refuse(502, "5.5.1", "STARTTLS not available"),
            },
            Command::Auth { .. } if !self.login_allowed() => {
                refuse(530, "5.7.0", "Must issue a STARTTLS command first")
            }
            Command::Auth { .. } if self.client_domain.is_none() => {
                refuse(503, "5.5.1", "EHLO first")
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => match (mechanism.to_ascii_uppercase().as_slice(), initial_response) {
                (b"PLAIN", None) => Action::SaslContinue(encode::CONTINUE_PLAIN, Sasl::Plain),
                (b"PLAIN", Some(ir)) => self.plain(ir.0),
                (b"LOGIN", None) => {
                    Action::SaslContinue(encode::CONTINUE_LOGIN_USERNAME, Sasl::LoginUsername)
                }
                (b"LOGIN", Some(ir)) => self.login_username(ir.0),
                _ => refuse(504, "5.5.4", "Unrecognized authentication type"),
            },
            Command::Noop | Command::Rset => fine(250, "2.0.0", "OK"),
            Command::Quit => Action::Quit,
            Command::Help | Command::Expn => fine(502, "5.5.1", "Command not implemented"),
            Command::Vrfy => fine(252, "2.5.2", "Cannot VRFY user"),
            Command::Mail | Command::Rcpt | Command::Data => {
                Action::Reply(self.auth_required(), Kind::Refusal)
            }
            Command::Bdat { size, .. } if size > self.limits.max_literal as u64 => {
                let mut bytes = self.auth_required();
                bytes.extend(reply(421, "4.7.0", "Too much data before authentication"));
                Action::Close(bytes)
            }
            Command::Bdat { size, .. } => Action::SkipChunk {
                size,
                reply: self.auth_required(),
            },
            Command::Other { .. } => refuse(500, "5.5.1", "Unknown command"),
        }
    }

    /// The client's answer to a `334` (line end removed).
    pub(super) fn sasl_response(&self, step: Sasl, line: &[u8]) -> Action {
        if line == b"*" {
            return refuse(501, "5.0.0", "Authentication cancelled");
        }
        match step {
            Sasl::Plain => self.plain(line),
            Sasl::LoginUsername => self.login_username(line),
            Sasl::LoginPassword { username } => match sasl::decode_login_password(line) {
                Ok(password) => Action::Login(Credentials {
                    authzid: None,
                    username,
                    password,
                }),
                Err(e) => sasl_refusal(e),
            },
        }
    }

    fn too_long(&self, b64: &[u8]) -> Option<Action> {
        (b64.len() > self.limits.max_sasl)
            .then(|| refuse(500, "5.5.6", "Authentication Exchange line is too long"))
    }

    /// Decodes a base64 PLAIN response into a login. A non-empty authzid is passed on
    /// in the credentials (the session refuses one that differs from the user).
    fn plain(&self, b64: &[u8]) -> Action {
        if let Some(refusal) = self.too_long(b64) {
            return refusal;
        }
        match sasl::decode_plain(b64) {
            Ok(creds) => Action::Login(creds),
            Err(e) => sasl_refusal(e),
        }
    }

    /// Decodes the LOGIN user name and asks for the password.
    fn login_username(&self, b64: &[u8]) -> Action {
        if let Some(refusal) = self.too_long(b64) {
            return refusal;
        }
        match sasl::decode_login_username(b64) {
            Ok(username) => Action::SaslContinue(
                encode::CONTINUE_LOGIN_PASSWORD,
                Sasl::LoginPassword { username },
            ),
            Err(e) => sasl_refusal(e),
        }
    }
}
