//! What the machine answers to one complete command.

use zeroize::Zeroizing;

use super::{ImapDownstream, Kind};
use crate::proto::imap::encode::{self, tagged, untagged};
use crate::proto::imap::parse;
use crate::proto::imap::types::{AString, CommandBody};
use crate::proto::line::strip_eol;
use crate::proto::{Credentials, LocalTls, sasl};

/// Commands of the authenticated and selected states: "log in first".
const NEEDS_LOGIN: &[&[u8]] = &[
    b"SELECT",
    b"EXAMINE",
    b"CREATE",
    b"DELETE",
    b"RENAME",
    b"SUBSCRIBE",
    b"UNSUBSCRIBE",
    b"LIST",
    b"LSUB",
    b"NAMESPACE",
    b"STATUS",
    b"APPEND",
    b"IDLE",
    b"ENABLE",
    b"CHECK",
    b"CLOSE",
    b"UNSELECT",
    b"EXPUNGE",
    b"SEARCH",
    b"FETCH",
    b"STORE",
    b"COPY",
    b"MOVE",
    b"UID",
    b"GETQUOTA",
    b"GETQUOTAROOT",
    b"SETQUOTA",
    b"GETACL",
    b"SETACL",
    b"MYRIGHTS",
    b"LISTRIGHTS",
    b"GETMETADATA",
    b"SETMETADATA",
    b"COMPRESS",
    b"SORT",
    b"THREAD",
    b"NOTIFY",
    b"ESEARCH",
];

/// Commands this machine parses itself.
const KNOWN: &[&[u8]] = &[
    b"CAPABILITY",
    b"NOOP",
    b"LOGOUT",
    b"STARTTLS",
    b"ID",
    b"LOGIN",
    b"AUTHENTICATE",
];

pub(super) enum Action {
    Reply(Vec<u8>, Kind),
    Logout(Vec<u8>),
    StartTls(Vec<u8>),
    StartTlsPipelined,
    Login(Vec<u8>, Credentials),
    SaslContinue(Vec<u8>),
}

impl ImapDownstream {
    /// The reply to a command we will not run (or cannot parse).
    pub(super) fn refusal(&self, cmd: &[u8]) -> Vec<u8> {
        let Ok((_, (tag, name))) = parse::command_head(cmd) else {
            return match strip_eol(cmd) {
                b"" => untagged("BAD Empty command line"),
                _ => untagged("BAD Syntax error"),
            };
        };
        let name = name.to_ascii_uppercase();
        let auth = name == b"LOGIN" || name == b"AUTHENTICATE";
        if auth && !self.login_allowed() {
            tagged(tag, "NO", Some("PRIVACYREQUIRED"), "Use STARTTLS first")
        } else if NEEDS_LOGIN.contains(&name.as_slice()) {
            tagged(tag, "BAD", None, "Log in first")
        } else if KNOWN.contains(&name.as_slice()) {
            tagged(tag, "BAD", None, "Invalid arguments")
        } else {
            tagged(tag, "BAD", None, "Unknown command")
        }
    }

    /// What to do about one complete command (`last`: nothing follows it yet).
    pub(super) fn decide(&self, bytes: &[u8], last: bool) -> Action {
        let Ok((_, cmd)) = parse::command(bytes) else {
            return Action::Reply(self.refusal(bytes), Kind::Refusal);
        };
        let tag = cmd.tag;
        let ok = |text: &str| tagged(tag, "OK", None, text);
        match cmd.body {
            CommandBody::Capability => Action::Reply(
                [
                    encode::capability(&self.capabilities()),
                    ok("Capability completed"),
                ]
                .concat(),
                Kind::Fine,
            ),
            CommandBody::Noop => Action::Reply(ok("NOOP completed"), Kind::Fine),
            CommandBody::Id => Action::Reply(
                [b"* ID NIL\r\n".to_vec(), ok("ID completed")].concat(),
                Kind::Fine,
            ),
            CommandBody::Logout => Action::Logout(tag.to_vec()),
            CommandBody::StartTls => match self.tls {
                LocalTls::StartTlsRequired if !last => Action::StartTlsPipelined,
                LocalTls::StartTlsRequired => Action::StartTls(tag.to_vec()),
                LocalTls::Active => Action::Reply(
                    tagged(tag, "BAD", None, "TLS is already active"),
                    Kind::Refusal,
                ),
                LocalTls::None => Action::Reply(
                    tagged(tag, "BAD", None, "STARTTLS is not available"),
                    Kind::Refusal,
                ),
            },
            CommandBody::Login { .. } | CommandBody::Authenticate { .. }
                if !self.login_allowed() =>
            {
                Action::Reply(self.refusal(bytes), Kind::Refusal)
            }
            CommandBody::Login { username, password } => {
                match login_credentials(username, password) {
                    Some(creds) => Action::Login(tag.to_vec(), creds),
                    None => Action::Reply(
                        tagged(tag, "BAD", None, "User name and password must be UTF-8"),
                        Kind::Refusal,
                    ),
                }
            }
            CommandBody::Authenticate { mechanism, .. }
                if !mechanism.eq_ignore_ascii_case(b"PLAIN") =>
            {
                Action::Reply(
                    tagged(tag, "NO", None, "Unsupported authentication mechanism"),
                    Kind::Refusal,
                )
            }
            CommandBody::Authenticate {
                initial_response, ..
            } => match initial_response {
                None => Action::SaslContinue(tag.to_vec()),
                Some(ir) => self.plain(tag, ir.0),
            },
            CommandBody::Other { .. } => Action::Reply(self.refusal(bytes), Kind::Refusal),
        }
    }

    /// Decodes a base64 PLAIN response into a login.
    pub(super) fn plain(&self, tag: &[u8], b64: &[u8]) -> Action {
        if b64.len() > self.limits.max_sasl {
            let reply = tagged(tag, "BAD", None, "SASL response too long");
            return Action::Reply(reply, Kind::Refusal);
        }
        match sasl::decode_plain(b64) {
            Ok(creds) => Action::Login(tag.to_vec(), creds),
            Err(e) => Action::Reply(
                tagged(
                    tag,
                    "BAD",
                    None,
                    &format!("Invalid SASL PLAIN response: {e}"),
                ),
                Kind::Refusal,
            ),
        }
    }
}

/// LOGIN arguments as credentials; `None` unless both are UTF-8.
fn login_credentials(username: AString<'_>, password: AString<'_>) -> Option<Credentials> {
    let username = String::from_utf8(username.to_bytes().into_owned()).ok()?;
    let password = Zeroizing::new(password.to_bytes().into_owned());
    Some(Credentials {
        authzid: None,
        username,
        password: sasl::secret_from_utf8(&password).ok()?,
    })
}
