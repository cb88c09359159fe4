//! The few IMAP lines the machines write, and string encoding for tests and callers.
//!
//! Free text that reaches the wire (messages from the session, capability strings
//! learned upstream) passes through [`sanitize`], so it can never end a line early or
//! inject a second response.

use secrecy::{ExposeSecret, SecretString};

/// Continuation request for a synchronizing literal.
pub const CONTINUE_LITERAL: &[u8] = b"+ Ready for literal data\r\n";
/// Empty continuation request of AUTHENTICATE.
pub const CONTINUE_SASL: &[u8] = b"+ \r\n";

/// Longest free text we write in one response.
const MAX_TEXT: usize = 300;

/// Makes free text safe for one response line: control characters (CR, LF, NUL...)
/// become spaces, surrounding space is trimmed, and the result is at most 300
/// characters.
pub fn sanitize(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect();
    cleaned.trim().to_owned()
}

/// Sanitizes bytes received from a peer into displayable text (lossy UTF-8).
pub fn sanitize_bytes(text: &[u8]) -> String {
    sanitize(&String::from_utf8_lossy(text))
}

/// A capability list fit for a `[CAPABILITY ...]` code: printable ASCII without `]`,
/// single spaces. `None` if nothing usable is left.
pub fn sanitize_capabilities(caps: &str) -> Option<String> {
    let ok = |w: &&str| {
        w.bytes()
            .all(|b| b.is_ascii_graphic() && b != b']' && b != b'[')
    };
    let words: Vec<&str> = caps.split_ascii_whitespace().filter(ok).collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// `* OK [CAPABILITY caps] text`
pub fn greeting(caps: &str) -> Vec<u8> {
    format!("* OK [CAPABILITY {caps}] oauth-mail-proxy ready\r\n").into_bytes()
}

/// `* CAPABILITY caps`
pub fn capability(caps: &str) -> Vec<u8> {
    format!("* CAPABILITY {caps}\r\n").into_bytes()
}

/// `* text` (e.g. `BYE Logging out`, `BAD Line too long`).
pub fn untagged(text: &str) -> Vec<u8> {
    format!("* {}\r\n", sanitize(text)).into_bytes()
}

/// `TAG STATUS [CODE] text`; `tag` must be a tag the parser accepted (no SP, CR, LF).
pub fn tagged(tag: &[u8], status: &str, code: Option<&str>, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + text.len() + 32);
    out.extend_from_slice(tag);
    out.push(b' ');
    out.extend_from_slice(status.as_bytes());
    out.push(b' ');
    if let Some(code) = code {
        out.push(b'[');
        out.extend_from_slice(code.as_bytes());
        out.extend_from_slice(b"] ");
    }
    out.extend_from_slice(sanitize(text).as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// A client command without arguments: `TAG NAME`.
pub fn command(tag: &str, name: &str) -> Vec<u8> {
    format!("{tag} {name}\r\n").into_bytes()
}

/// `TAG AUTHENTICATE MECH [initial-response]`. The result holds the token when an
/// initial response is given: do not log it.
pub fn authenticate(tag: &str, mechanism: &str, initial: Option<&SecretString>) -> Vec<u8> {
    match initial {
        Some(ir) => format!("{tag} AUTHENTICATE {mechanism} {}\r\n", ir.expose_secret()),
        None => format!("{tag} AUTHENTICATE {mechanism}\r\n"),
    }
    .into_bytes()
}

/// A SASL response line (base64 followed by CRLF).
pub fn sasl_response(b64: &SecretString) -> Vec<u8> {
    format!("{}\r\n", b64.expose_secret()).into_bytes()
}

/// A quoted string, or `None` if the bytes cannot be quoted (NUL, CR or LF).
pub fn quoted(value: &[u8]) -> Option<Vec<u8>> {
    if value.iter().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
        return None;
    }
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Some(out)
}

/// An `astring`: an atom when possible, else a quoted string, else a synchronizing
/// literal (`{n}\r\n` + data; the caller must wait for the continuation).
pub fn astring(value: &[u8]) -> Vec<u8> {
    if !value.is_empty()
        && value
            .iter()
            .all(|&b| super::parse::is_astring_char(b) && b < 0x80)
    {
        return value.to_vec();
    }
    quoted(value).unwrap_or_else(|| {
        let mut out = format!("{{{}}}\r\n", value.len()).into_bytes();
        out.extend_from_slice(value);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::imap::parse;
    use crate::proto::imap::types::AString;
    use proptest::prelude::*;

    #[test]
    fn sanitize_table() {
        let rows = [
            ("plain", "plain"),
            ("a\r\nb", "a  b"),
            ("\r\nA1 OK injected\r\n", "A1 OK injected"),
            ("tab\there", "tab here"),
            ("  x  ", "x"),
            ("", ""),
        ];
        for (input, expected) in rows {
            assert_eq!(sanitize(input), expected);
        }
        assert_eq!(sanitize(&"x".repeat(1000)).len(), MAX_TEXT);
    }

    #[test]
    fn capabilities_table() {
        let rows = [
            ("IMAP4rev1 IDLE", Some("IMAP4rev1 IDLE")),
            ("  IMAP4rev1   IDLE \r\n", Some("IMAP4rev1 IDLE")),
            ("IMAP4rev1 X] Y", Some("IMAP4rev1 Y")),
            ("", None),
            ("]", None),
        ];
        for (input, expected) in rows {
            assert_eq!(sanitize_capabilities(input).as_deref(), expected);
        }
    }

    #[test]
    fn lines_table() {
        let rows: Vec<(Vec<u8>, &[u8])> = vec![
            (
                greeting("IMAP4rev1"),
                b"* OK [CAPABILITY IMAP4rev1] oauth-mail-proxy ready\r\n",
            ),
            (tagged(b"a1", "OK", None, "Done"), b"a1 OK Done\r\n"),
            (
                tagged(b"a1", "NO", Some("UNAVAILABLE"), "x\r\ny"),
                b"a1 NO [UNAVAILABLE] x  y\r\n",
            ),
            (untagged("BYE bye"), b"* BYE bye\r\n"),
            (command("A1", "CAPABILITY"), b"A1 CAPABILITY\r\n"),
            (
                authenticate("A3", "XOAUTH2", None),
                b"A3 AUTHENTICATE XOAUTH2\r\n",
            ),
            (
                authenticate(
                    "A3",
                    "XOAUTH2",
                    Some(&SecretString::from("dG9r".to_owned())),
                ),
                b"A3 AUTHENTICATE XOAUTH2 dG9r\r\n",
            ),
            (quoted(br#"a"b\c"#).unwrap(), br#""a\"b\\c""#),
            (astring(b"user"), b"user"),
            (astring(b""), b"\"\""),
            (astring(b"a b"), b"\"a b\""),
            (astring(b"a\r\nb"), b"{4}\r\na\r\nb"),
        ];
        for (got, expected) in rows {
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(expected));
        }
        assert_eq!(quoted(b"a\nb"), None);
    }

    proptest! {
        /// parse(encode(x)) == x for quoted strings.
        #[test]
        fn quoted_roundtrip(value in proptest::collection::vec(1u8..=255, 0..40)) {
            if let Some(enc) = quoted(&value) {
                let mut input = enc.clone();
                input.extend_from_slice(b"\r\n");
                let (rest, raw) = parse::quoted(&input).unwrap();
                prop_assert_eq!(rest, b"\r\n");
                prop_assert_eq!(&AString::Quoted(raw).to_bytes()[..], &value[..]);
            }
        }

        /// Any value without NUL survives astring encoding and parsing.
        #[test]
        fn astring_roundtrip(value in proptest::collection::vec(1u8..=255, 0..40)) {
            let mut input = astring(&value);
            input.extend_from_slice(b" ");
            let (rest, parsed) = parse::astring(&input).unwrap();
            prop_assert_eq!(rest, b" ");
            prop_assert_eq!(&parsed.to_bytes()[..], &value[..]);
        }
    }
}
