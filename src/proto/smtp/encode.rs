//! The SMTP lines the machines write: replies on the server side (greeting, EHLO,
//! `NNN X.Y.Z text`, `334` challenges), commands on the client side (EHLO, STARTTLS,
//! AUTH, QUIT).
//!
//! Free text that reaches the wire (messages from the session, extension lines
//! learned upstream, the configured host name) passes through [`sanitize`],
//! [`sanitize_extension`] or [`sanitize_word`], so it can never end a line early or
//! inject a second reply.

use secrecy::{ExposeSecret, SecretString};

use super::parse;

/// `334` asking for the PLAIN response (an empty challenge).
pub const CONTINUE_PLAIN: &[u8] = b"334 \r\n";
/// `334 Username:` of the LOGIN mechanism.
pub const CONTINUE_LOGIN_USERNAME: &[u8] = b"334 VXNlcm5hbWU6\r\n";
/// `334 Password:` of the LOGIN mechanism.
pub const CONTINUE_LOGIN_PASSWORD: &[u8] = b"334 UGFzc3dvcmQ6\r\n";

/// Longest free text we write in one reply line.
const MAX_TEXT: usize = 300;
/// Longest EHLO extension line we pass on (RFC 5321's 512-octet reply line, minus
/// `250-` and CRLF).
pub const MAX_EXTENSION: usize = 506;

/// Makes free text safe for one reply line (RFC 5321 `textstring`): control
/// characters become spaces, other non-ASCII characters `?`; surrounding space is
/// trimmed and the result is at most 300 characters.
pub fn sanitize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            c if !c.is_ascii() => '?',
            c => c,
        })
        .take(MAX_TEXT)
        .collect();
    cleaned.trim().to_owned()
}

/// A word fit for a reply (a host name): printable ASCII without spaces; `None` if
/// nothing is left.
pub fn sanitize_word(word: &str) -> Option<String> {
    let w: String = word
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(MAX_TEXT)
        .collect();
    (!w.is_empty()).then_some(w)
}

/// An EHLO extension line fit to repeat: a valid `keyword [params]` of printable
/// ASCII, runs of spaces and tabs made single spaces, at most [`MAX_EXTENSION`]
/// bytes. `None` otherwise (a line with CR, LF or other controls is dropped whole).
pub fn sanitize_extension(line: &str) -> Option<String> {
    if line.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return None;
    }
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let joined = words.join(" ");
    let ok = !joined.is_empty()
        && joined.len() <= MAX_EXTENSION
        && joined.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && parse::ehlo_line(joined.as_bytes()).is_ok();
    ok.then_some(joined)
}

/// `220 <hostname> ESMTP oauth-mail-proxy ready`
pub fn greeting(hostname: &str) -> Vec<u8> {
    format!("220 {hostname} ESMTP oauth-mail-proxy ready\r\n").into_bytes()
}

/// `NNN X.Y.Z text`: a one-line reply with an enhanced status code.
pub fn reply(code: u16, enhanced: &str, text: &str) -> Vec<u8> {
    format!("{code} {enhanced} {}\r\n", sanitize(text)).into_bytes()
}

/// A multi-line reply: `NNN-line` for all but the last, `NNN line` for the last.
/// The lines must already be safe (no CR or LF). Nothing for no lines.
pub fn multiline<S: AsRef<str>>(code: u16, lines: &[S]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let sep = if n + 1 == lines.len() { ' ' } else { '-' };
        out.extend_from_slice(format!("{code}{sep}{}\r\n", line.as_ref()).as_bytes());
    }
    out
}

/// The reply to EHLO: `250-<hostname>`, then one line per extension.
pub fn ehlo_reply(hostname: &str, extensions: &[String]) -> Vec<u8> {
    let mut lines = Vec::with_capacity(extensions.len() + 1);
    lines.push(hostname);
    lines.extend(extensions.iter().map(String::as_str));
    multiline(250, &lines)
}

/// `EHLO <domain>`; the domain must be a single printable word.
pub fn ehlo(domain: &str) -> Vec<u8> {
    format!("EHLO {domain}\r\n").into_bytes()
}

/// `STARTTLS`
pub const STARTTLS: &[u8] = b"STARTTLS\r\n";
/// `QUIT`
pub const QUIT: &[u8] = b"QUIT\r\n";

/// `AUTH <mechanism> <initial-response>`. The result holds the token: do not log it.
pub fn auth(mechanism: &str, initial_response: &SecretString) -> Vec<u8> {
    format!("AUTH {mechanism} {}\r\n", initial_response.expose_secret()).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::smtp::types::{Command, ReplyLine, Sensitive};
    use proptest::prelude::*;

    #[test]
    fn sanitize_table() {
        let rows = [
            ("plain", "plain"),
            ("a\r\nb", "a  b"),
            ("\r\n250 injected\r\n", "250 injected"),
            ("tab\there", "tab here"),
            ("  x  ", "x"),
            ("gr\u{fc}n", "gr?n"),
            ("", ""),
        ];
        for (input, expected) in rows {
            assert_eq!(sanitize(input), expected);
        }
        assert_eq!(sanitize(&"x".repeat(1000)).len(), MAX_TEXT);
    }

    #[test]
    fn sanitize_word_and_extension_tables() {
        let words = [
            ("mx.example.com", Some("mx.example.com")),
            ("a b\r\nc", Some("abc")),
            (" \r\n", None),
        ];
        for (input, expected) in words {
            assert_eq!(sanitize_word(input).as_deref(), expected);
        }
        let long = format!("X-LONG {}", "y".repeat(MAX_EXTENSION));
        let exts = [
            ("SIZE 35882577", Some("SIZE 35882577")),
            ("  AUTH   PLAIN\tLOGIN ", Some("AUTH PLAIN LOGIN")),
            ("AUTH=PLAIN", Some("AUTH=PLAIN")),
            ("8BITMIME", Some("8BITMIME")),
            ("X\r\n250 INJECTED", None),
            ("gr\u{fc}n", None),
            ("-X", Some("-X")),
            ("=X", None),
            ("", None),
            (long.as_str(), None),
        ];
        for (input, expected) in exts {
            assert_eq!(sanitize_extension(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn lines_table() {
        let secret = SecretString::from("dG9r".to_owned());
        let rows: Vec<(Vec<u8>, &[u8])> = vec![
            (
                greeting("mx.example"),
                b"220 mx.example ESMTP oauth-mail-proxy ready\r\n",
            ),
            (reply(250, "2.0.0", "OK"), b"250 2.0.0 OK\r\n"),
            (reply(454, "4.7.0", "x\r\n235 y"), b"454 4.7.0 x  235 y\r\n"),
            (
                multiline(250, &["a", "b", "c"]),
                b"250-a\r\n250-b\r\n250 c\r\n",
            ),
            (multiline(221, &["bye"]), b"221 bye\r\n"),
            (multiline::<&str>(250, &[]), b""),
            (
                ehlo_reply("h", &["PIPELINING".into(), "AUTH PLAIN".into()]),
                b"250-h\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n",
            ),
            (ehlo_reply("h", &[]), b"250 h\r\n"),
            (ehlo("client.example"), b"EHLO client.example\r\n"),
            (auth("XOAUTH2", &secret), b"AUTH XOAUTH2 dG9r\r\n"),
        ];
        for (got, expected) in rows {
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(expected));
        }
    }

    proptest! {
        /// parse(encode(x)) == x for multi-line replies.
        #[test]
        fn multiline_roundtrip(digits in (2u16..=5, 0u16..=5, 0u16..=9),
                               lines in proptest::collection::vec("[ -~]{0,20}", 1..5)) {
            let code = digits.0 * 100 + digits.1 * 10 + digits.2;
            let bytes = multiline(code, &lines);
            let mut rest: &[u8] = &bytes;
            for (n, line) in lines.iter().enumerate() {
                let (r, parsed) = parse::reply_line(rest).unwrap();
                let expected = ReplyLine {
                    code,
                    last: n + 1 == lines.len(),
                    text: line.as_bytes(),
                };
                prop_assert_eq!(parsed, expected);
                rest = r;
            }
            prop_assert!(rest.is_empty());
        }

        /// The commands we send parse back as what we meant.
        #[test]
        fn client_commands_roundtrip(domain in "[a-z0-9.-]{1,40}", ir in "[A-Za-z0-9+/]{1,40}={0,2}") {
            let bytes = ehlo(&domain);
            prop_assert_eq!(parse::command(&bytes).unwrap(), (&b""[..], Command::Ehlo(domain.as_bytes())));
            let bytes = auth("XOAUTH2", &SecretString::from(ir.clone()));
            let expected = Command::Auth { mechanism: b"XOAUTH2", initial_response: Some(Sensitive(ir.as_bytes())) };
            prop_assert_eq!(parse::command(&bytes).unwrap(), (&b""[..], expected));
        }
    }
}
