//! The few POP3 lines the machines write.
//!
//! Free text that reaches the wire (messages from the session) passes through
//! [`sanitize`] (shared with IMAP), so it can never end a line early or inject a second
//! response. Multi-line bodies are dot-stuffed.

use secrecy::{ExposeSecret, SecretString};

pub use crate::proto::imap::encode::{sanitize, sanitize_bytes};

/// The greeting: no APOP timestamp (we never offer APOP).
pub const GREETING: &[u8] = b"+OK oauth-mail-proxy ready\r\n";
/// Empty continuation request of AUTH.
pub const CONTINUE_SASL: &[u8] = b"+ \r\n";

/// `+OK text` (just `+OK` when the text is empty).
pub fn ok(text: &str) -> Vec<u8> {
    status("+OK", None, text)
}

/// `-ERR [CODE] text`; `code` is an RFC 2449 / 3206 response code such as `AUTH` or
/// `SYS/TEMP` (a constant of ours, never peer input).
pub fn err(code: Option<&str>, text: &str) -> Vec<u8> {
    status("-ERR", code, text)
}

/// Longest response line we write, CRLF included (RFC 1939, section 3).
pub const MAX_RESPONSE_LINE: usize = 512;

/// A status line; the text is sanitized and cut (at a character boundary) so the
/// line stays within [`MAX_RESPONSE_LINE`].
fn status(indicator: &str, code: Option<&str>, text: &str) -> Vec<u8> {
    let text = sanitize(text);
    let mut out = String::with_capacity(text.len() + 24);
    out.push_str(indicator);
    if let Some(code) = code {
        out.push_str(" [");
        out.push_str(code);
        out.push(']');
    }
    let room = MAX_RESPONSE_LINE.saturating_sub(out.len() + 3);
    let mut end = text.len().min(room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = text[..end].trim_end();
    if !text.is_empty() {
        out.push(' ');
        out.push_str(text);
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// A multi-line response: the status line, each line dot-stuffed, then `.`.
pub fn multiline(status_line: Vec<u8>, lines: &[&str]) -> Vec<u8> {
    let mut out = status_line;
    for line in lines {
        let line = sanitize(line);
        if line.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A client command without arguments (`CAPA`, `STLS`).
pub fn command(name: &str) -> Vec<u8> {
    format!("{name}\r\n").into_bytes()
}

/// `AUTH MECH [initial-response]` (RFC 5034). The result holds the token when an
/// initial response is given: do not log it.
pub fn auth(mechanism: &str, initial: Option<&SecretString>) -> Vec<u8> {
    match initial {
        Some(ir) => format!("AUTH {mechanism} {}\r\n", ir.expose_secret()),
        None => format!("AUTH {mechanism}\r\n"),
    }
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::pop3::parse;
    use crate::proto::pop3::types::{BodyLine, Response, Status};
    use proptest::prelude::*;

    #[test]
    fn lines_table() {
        let rows: Vec<(Vec<u8>, &[u8])> = vec![
            (ok("Logged in"), b"+OK Logged in\r\n"),
            (ok(""), b"+OK\r\n"),
            (err(None, "Unknown command"), b"-ERR Unknown command\r\n"),
            (
                err(Some("SYS/TEMP"), "down\r\n+OK injected"),
                b"-ERR [SYS/TEMP] down  +OK injected\r\n",
            ),
            (err(Some("AUTH"), ""), b"-ERR [AUTH]\r\n"),
            (
                multiline(ok(""), &["PLAIN", ".hidden", "a\r\nb"]),
                b"+OK\r\nPLAIN\r\n..hidden\r\na  b\r\n.\r\n",
            ),
            (multiline(ok("x"), &[]), b"+OK x\r\n.\r\n"),
            (command("CAPA"), b"CAPA\r\n"),
            (auth("XOAUTH2", None), b"AUTH XOAUTH2\r\n"),
            (
                auth("XOAUTH2", Some(&SecretString::from("dG9r".to_owned()))),
                b"AUTH XOAUTH2 dG9r\r\n",
            ),
        ];
        for (got, expected) in rows {
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(expected));
        }
    }

    #[test]
    fn lines_stay_within_512_octets() {
        // 300 characters (the sanitize cap) of 4 and 2 bytes: cut to fit
        for text in ["\u{1f600}".repeat(300), "\u{e9}".repeat(299)] {
            for line in [ok(&text), err(Some("SYS/TEMP"), &text)] {
                assert!(line.len() <= MAX_RESPONSE_LINE, "{}", line.len());
                assert!(line.len() >= MAX_RESPONSE_LINE - 4, "{}", line.len());
                assert!(line.ends_with(b"\r\n"));
                assert!(std::str::from_utf8(&line).is_ok());
            }
        }
        assert_eq!(ok(&"x".repeat(1000)).len(), 4 + 300 + 2);
    }

    proptest! {
        /// parse(encode(x)) == x for status lines (text without controls, trimmed).
        #[test]
        fn status_roundtrip(is_ok: bool, code in proptest::option::of("[A-Z]{1,4}(/[A-Z]{1,4})?"),
                            text in "[ -~]{0,40}") {
            // a text that starts with "[" reads as a code when no code precedes it
            prop_assume!(code.is_some() || !text.trim_start().starts_with('['));
            let line = if is_ok { status("+OK", code.as_deref(), &text) } else { err(code.as_deref(), &text) };
            let (rest, r) = parse::response(&line).unwrap();
            prop_assert!(rest.is_empty());
            let want = Response::Status {
                status: if is_ok { Status::Ok } else { Status::Err },
                code: code.as_deref().map(str::as_bytes),
                text: text.trim().as_bytes(),
            };
            prop_assert_eq!(r, want);
        }

        /// A dot-stuffed body reads back line by line, whatever its lines start with.
        #[test]
        fn multiline_roundtrip(lines in proptest::collection::vec("[.a-z ]{0,6}", 0..6)) {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let bytes = multiline(ok(""), &refs);
            let mut rest = &bytes[b"+OK\r\n".len()..];
            let mut got = Vec::new();
            loop {
                let (r, l) = parse::body_line(rest).unwrap();
                rest = r;
                match l {
                    BodyLine::Line(l) => got.push(String::from_utf8(l.to_vec()).unwrap()),
                    BodyLine::End => break,
                }
            }
            prop_assert!(rest.is_empty());
            let want: Vec<String> = lines.iter().map(|l| l.trim().to_owned()).collect();
            prop_assert_eq!(got, want);
        }
    }
}
