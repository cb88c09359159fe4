//! The sans-I/O redactor of the protocol trace: bytes of both directions in, the
//! lines to log out. Whatever it does not know to be safe comes out as
//! `[REDACTED n bytes]` (n: the line's length without its line end).

use zeroize::Zeroizing;

use crate::config::Protocol;

/// Bytes of a line kept for classification; the rest is only counted (a longer
/// client line is redacted whole, a longer server line shown cut).
const KEEP: usize = 64 * 1024;
#[cfg(test)]
pub(super) const KEEP_FOR_TESTS: usize = KEEP;

/// Who sent the bytes: the side playing the client or the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Client,
    Server,
}

/// One direction's line being assembled. The kept bytes may hold a password: they
/// are wiped when dropped or reused.
#[derive(Default)]
struct Line {
    buf: Zeroizing<Vec<u8>>,
    /// Bytes of the line so far (kept or not), line feed excluded.
    len: usize,
    /// Whether the last byte so far is a carriage return.
    cr: bool,
}

impl Line {
    /// Appends up to the next line feed; returns the bytes consumed and whether the
    /// line is complete.
    fn take(&mut self, bytes: &[u8]) -> (usize, bool) {
        let (part, done) = match bytes.iter().position(|&b| b == b'\n') {
            Some(i) => (&bytes[..i], true),
            None => (bytes, false),
        };
        let room = KEEP.saturating_sub(self.buf.len()).min(part.len());
        self.buf.extend_from_slice(&part[..room]);
        self.len += part.len();
        if let Some(&last) = part.last() {
            self.cr = last == b'\r';
        }
        (part.len() + usize::from(done), done)
    }

    /// The complete line (kept bytes, without CR) and its length without CR; resets.
    fn finish(&mut self) -> (Zeroizing<Vec<u8>>, usize) {
        let mut buf = std::mem::take(&mut self.buf);
        let mut len = std::mem::take(&mut self.len);
        if std::mem::take(&mut self.cr) {
            len -= 1;
            buf.truncate(len);
        }
        (buf, len)
    }
}

/// SMTP `DATA`: asked for, then the body until the lone dot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Data {
    No,
    Asked,
    Body,
}

/// Redacts one conversation (one protocol, both directions).
pub struct Redactor {
    proto: Protocol,
    client: Line,
    server: Line,
    /// IMAP: bytes of a client literal still to come, and whether any has come.
    literal: Option<(u64, bool)>,
    /// Bytes of the client command continued by a literal, counted so far.
    continued: Option<usize>,
    /// A SASL exchange runs: client lines are responses, server continuations are
    /// challenges.
    sasl: bool,
    data: Data,
}

impl Redactor {
    pub fn new(proto: Protocol) -> Redactor {
        Redactor {
            proto,
            client: Line::default(),
            server: Line::default(),
            literal: None,
            continued: None,
            sasl: false,
            data: Data::No,
        }
    }

    /// Takes bytes `from` one side; returns the complete lines to log, redacted.
    pub fn push(&mut self, from: From, mut bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            if from == From::Client
                && let Some((left, _)) = self.literal
            {
                let n = bytes.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                *self.continued.get_or_insert(0) += n;
                bytes = &bytes[n..];
                let left = left - n as u64;
                self.literal = (left > 0).then_some((left, true));
                continue;
            }
            let line = match from {
                From::Client => &mut self.client,
                From::Server => &mut self.server,
            };
            let (used, done) = line.take(bytes);
            bytes = &bytes[used..];
            if done {
                let (text, len) = line.finish();
                let shown = match from {
                    From::Client => self.client_line(&text, len),
                    From::Server => Some(self.server_line(&text, len)),
                };
                out.extend(shown);
            }
        }
        out
    }

    /// A complete client line; `None` while a literal continues the command.
    fn client_line(&mut self, text: &[u8], len: usize) -> Option<String> {
        let literal = (self.proto == Protocol::Imap && len == text.len())
            .then(|| literal_at_end(text))
            .flatten();
        if let Some(so_far) = self.continued.take() {
            // The rest of a command after a literal: all redacted, shown at its end.
            if let Some(n) = literal {
                self.continued = Some(so_far + len);
                self.literal = Some((n, false));
                return None;
            }
            return Some(redacted(so_far + len));
        }
        if let Some(n) = literal {
            self.continued = Some(0);
            self.literal = Some((n, false));
            // Only a LOGIN's user name is shown of a command with a literal.
            let shown = login(text).unwrap_or_else(|| redacted(len));
            return Some(shown);
        }
        if self.sasl || self.data == Data::Body || len != text.len() {
            if self.data == Data::Body && text == b"." {
                self.data = Data::No;
                return Some(".".into());
            }
            return Some(redacted(len));
        }
        let shown = match self.proto {
            Protocol::Imap => self.imap_command(text),
            Protocol::Pop3 => self.pop3_command(text),
            Protocol::Smtp => self.smtp_command(text),
        };
        Some(shown.unwrap_or_else(|| redacted(len)))
    }

    fn imap_command(&mut self, text: &[u8]) -> Option<String> {
        let s = std::str::from_utf8(text).ok()?;
        let (tag, rest) = s.split_once(' ')?;
        if !is_tag(tag) {
            return None;
        }
        let (cmd, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let known = [
            "CAPABILITY",
            "NOOP",
            "STARTTLS",
            "LOGOUT",
            "ID",
            "LOGIN",
            "AUTHENTICATE",
        ];
        match verb(cmd, &known) {
            "CAPABILITY" | "NOOP" | "STARTTLS" | "LOGOUT" if args.is_empty() => Some(s.into()),
            "ID" if is_printable(args) => Some(s.into()),
            "LOGIN" => login(text),
            "AUTHENTICATE" => self.sasl_start(&format!("{tag} {cmd}"), args),
            _ => None,
        }
    }

    fn pop3_command(&mut self, text: &[u8]) -> Option<String> {
        let s = std::str::from_utf8(text).ok()?;
        let (cmd, args) = s.split_once(' ').unwrap_or((s, ""));
        let known = [
            "CAPA", "STLS", "QUIT", "NOOP", "RSET", "AUTH", "USER", "PASS", "APOP",
        ];
        match verb(cmd, &known) {
            "CAPA" | "STLS" | "QUIT" | "NOOP" | "RSET" | "AUTH" if args.is_empty() => {
                Some(s.into())
            }
            "USER" if is_printable(args) => Some(s.into()),
            "PASS" => Some(format!("{cmd} [REDACTED]")),
            "APOP" => {
                let (user, _) = args.split_once(' ')?;
                is_printable(user).then(|| format!("{cmd} {user} [REDACTED]"))
            }
            "AUTH" => self.sasl_start(cmd, args),
            _ => None,
        }
    }

    fn smtp_command(&mut self, text: &[u8]) -> Option<String> {
        let s = std::str::from_utf8(text).ok()?;
        let (cmd, args) = s.split_once(' ').unwrap_or((s, ""));
        let known = [
            "STARTTLS", "QUIT", "NOOP", "RSET", "HELP", "EHLO", "HELO", "LHLO", "MAIL", "RCPT",
            "DATA", "AUTH",
        ];
        match verb(cmd, &known) {
            "STARTTLS" | "QUIT" | "NOOP" | "RSET" | "HELP" if args.is_empty() => Some(s.into()),
            "EHLO" | "HELO" | "LHLO" | "MAIL" | "RCPT" if is_printable(args) => Some(s.into()),
            "DATA" if args.is_empty() => {
                self.data = Data::Asked;
                Some(s.into())
            }
            "AUTH" => self.sasl_start(cmd, args),
            _ => None,
        }
    }

    /// `AUTHENTICATE`/`AUTH` with `args` (mechanism, then maybe an initial
    /// response): shown as the mechanism and `[REDACTED]`; SASL runs from now on.
    fn sasl_start(&mut self, cmd: &str, args: &str) -> Option<String> {
        let (mech, ir) = args.split_once(' ').unwrap_or((args, ""));
        self.sasl = true;
        if mech.is_empty()
            || mech.len() > 40
            || !mech
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Some(format!("{cmd} [REDACTED]"));
        }
        Some(match ir.is_empty() {
            true => format!("{cmd} {mech}"),
            false => format!("{cmd} {mech} [REDACTED]"),
        })
    }

    /// A complete server line: shown, unless it is a SASL challenge.
    fn server_line(&mut self, text: &[u8], len: usize) -> String {
        let continuation = match self.proto {
            Protocol::Imap => text.first() == Some(&b'+'),
            Protocol::Pop3 => text == b"+" || text.starts_with(b"+ "),
            Protocol::Smtp => text.starts_with(b"334"),
        };
        if continuation {
            if self.sasl || self.proto == Protocol::Smtp {
                return redacted(len);
            }
            return shown(text, len);
        }
        let last = match self.proto {
            // A tagged reply ends an IMAP command (and a literal it refused).
            Protocol::Imap => !text.starts_with(b"* "),
            Protocol::Pop3 => text.starts_with(b"+OK") || text.starts_with(b"-ERR"),
            Protocol::Smtp => text.get(3).is_none_or(|&b| b == b' '),
        };
        if last {
            self.sasl = false;
            if let Some((_, false)) = self.literal {
                self.literal = None;
                self.continued = None;
            }
            // Pipelined MAIL and RCPT replies may come first.
            if self.data == Data::Asked && text.starts_with(b"354") {
                self.data = Data::Body;
            }
        }
        shown(text, len)
    }
}

/// `tag LOGIN user ...` as `tag LOGIN user [REDACTED]` (`tag LOGIN [REDACTED]` when
/// the user name is a literal); `None` for anything else.
fn login(text: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(text).ok()?;
    let (tag, rest) = s.split_once(' ')?;
    let (cmd, args) = rest.split_once(' ')?;
    if !is_tag(tag) || !cmd.eq_ignore_ascii_case("LOGIN") {
        return None;
    }
    let user = if let Some(q) = args.strip_prefix('"') {
        let mut escaped = false;
        let end = q.char_indices().find_map(|(i, c)| {
            let close = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            close.then_some(i)
        });
        end.map(|e| &args[..e + 2])
    } else if args.starts_with('{') {
        None
    } else {
        args.split(' ').next().filter(|u| !u.is_empty())
    };
    Some(match user.filter(|u| is_printable(u)) {
        Some(user) => format!("{tag} {cmd} {user} [REDACTED]"),
        None => format!("{tag} {cmd} [REDACTED]"),
    })
}

/// The one of `known` that `cmd` is (ignoring case), else `""`. (No upper-cased
/// copy: an unknown "command" may be a password.)
fn verb(cmd: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| k.eq_ignore_ascii_case(cmd))
        .copied()
        .unwrap_or("")
}

/// The length of the IMAP literal a line announces (`{N}` or `{N+}` at its end).
fn literal_at_end(text: &[u8]) -> Option<u64> {
    let inner = text.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn is_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 64
        && tag
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"{}()%*\\+".contains(&b))
}

/// Printable ASCII and spaces only (no control characters).
fn is_printable(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

fn redacted(len: usize) -> String {
    format!("[REDACTED {len} bytes]")
}

/// A server line as text: control characters escaped, cut at [`KEEP`] bytes.
fn shown(text: &[u8], len: usize) -> String {
    let mut s: String = String::from_utf8_lossy(text)
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect();
    if len > text.len() {
        s.push_str(&format!(" [... {} more bytes]", len - text.len()));
    }
    s
}
