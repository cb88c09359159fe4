//! SASL messages, shared by all three protocols.
//!
//! Downstream we decode what legacy clients send: PLAIN (RFC 4616,
//! `authzid NUL authcid NUL passwd`) and the two pieces of the LOGIN mechanism (SMTP's
//! `AUTH LOGIN`). Upstream we build the initial responses of XOAUTH2 (Google's and
//! Microsoft's) and OAUTHBEARER (RFC 7628), and read the `status` of the JSON error
//! challenge a server sends when it rejects a token.
//!
//! Every decoded buffer that may hold a password or token is wiped after use; passwords
//! leave this module only as [`SecretString`], initial responses only as base64 inside
//! a [`SecretString`].

use std::borrow::Cow;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::Credentials;

/// Why a client's SASL response could not be used. Never contains the response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("invalid base64")]
    Base64,
    #[error("malformed PLAIN message")]
    Malformed,
    #[error("SASL message is not valid UTF-8")]
    Utf8,
    #[error("empty user name")]
    EmptyUsername,
}

/// Standard alphabet; padding optional on input (some clients omit it), always
/// written on output.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 encoding with the standard alphabet and padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes base64 into a buffer that is wiped when dropped. The buffer is sized up
/// front so decoding never reallocates (and never leaves a copy behind).
pub fn decode_base64(b64: &[u8]) -> Result<Zeroizing<Vec<u8>>, SaslError> {
    let mut out = Zeroizing::new(Vec::with_capacity(b64.len() / 4 * 3 + 3));
    B64.decode_vec(b64, &mut out)
        .map_err(|_| SaslError::Base64)?;
    Ok(out)
}

/// Decodes a base64 PLAIN response (`authzid NUL authcid NUL passwd`).
pub fn decode_plain(b64: &[u8]) -> Result<Credentials, SaslError> {
    parse_plain(&decode_base64(b64)?)
}

/// Parses a decoded PLAIN message. An empty authzid means "none"; the authcid must not
/// be empty; the password may be (the local check will refuse it).
pub fn parse_plain(raw: &[u8]) -> Result<Credentials, SaslError> {
    let mut parts = raw.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if authcid.is_empty() {
        return Err(SaslError::EmptyUsername);
    }
    let authzid = std::str::from_utf8(authzid).map_err(|_| SaslError::Utf8)?;
    let username = std::str::from_utf8(authcid).map_err(|_| SaslError::Utf8)?;
    Ok(Credentials {
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        username: username.to_owned(),
        password: secret_from_utf8(passwd)?,
    })
}

/// Decodes the user-name piece of the LOGIN mechanism.
pub fn decode_login_username(b64: &[u8]) -> Result<String, SaslError> {
    let raw = decode_base64(b64)?;
    let name = std::str::from_utf8(&raw).map_err(|_| SaslError::Utf8)?;
    if name.is_empty() {
        return Err(SaslError::EmptyUsername);
    }
    Ok(name.to_owned())
}

/// Decodes the password piece of the LOGIN mechanism.
pub fn decode_login_password(b64: &[u8]) -> Result<SecretString, SaslError> {
    secret_from_utf8(&decode_base64(b64)?)
}

/// Copies UTF-8 bytes into a [`SecretString`] (the only copy that outlives the call).
pub fn secret_from_utf8(bytes: &[u8]) -> Result<SecretString, SaslError> {
    let s = std::str::from_utf8(bytes).map_err(|_| SaslError::Utf8)?;
    Ok(SecretString::from(s.to_owned()))
}

/// XOAUTH2 initial response, base64: `user=U ^A auth=Bearer T ^A ^A`.
pub fn xoauth2_initial_response(user: &str, token: &SecretString) -> SecretString {
    let raw = Zeroizing::new(format!(
        "user={user}\x01auth=Bearer {}\x01\x01",
        token.expose_secret()
    ));
    SecretString::from(encode_base64(raw.as_bytes()))
}

/// OAUTHBEARER (RFC 7628) initial response, base64:
/// `n,a=U,^Ahost=H^Aport=P^Aauth=Bearer T^A^A`, the user GS2-escaped.
pub fn oauthbearer_initial_response(
    user: &str,
    host: &str,
    port: u16,
    token: &SecretString,
) -> SecretString {
    let raw = Zeroizing::new(format!(
        "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
        gs2_escape(user),
        token.expose_secret()
    ));
    SecretString::from(encode_base64(raw.as_bytes()))
}

/// GS2 `saslname` escaping (RFC 5801): `,` → `=2C`, `=` → `=3D`.
pub fn gs2_escape(name: &str) -> Cow<'_, str> {
    if !name.contains([',', '=']) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 6);
    for c in name.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Longest `status` we pass on; it ends up in errors and logs.
const MAX_STATUS: usize = 64;

/// Reads the `status` field of a base64 JSON error challenge
/// (`{"status":"401","schemes":"Bearer","scope":"..."}`). `None` if the challenge is
/// not base64 JSON or has no usable status. Numbers are accepted as well as strings;
/// the result is printable ASCII only and at most 64 characters.
pub fn error_challenge_status(b64: &[u8]) -> Option<String> {
    let raw = decode_base64(b64).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    let status = match json.get("status")? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let clean: String = status
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(MAX_STATUS)
        .collect();
    (!clean.trim().is_empty()).then(|| clean.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn plain_table() {
        // (decoded message, Ok((authzid, user, password)) or error)
        type Row = (
            &'static [u8],
            Result<(Option<&'static str>, &'static str, &'static str), SaslError>,
        );
        let rows: &[Row] = &[
            (b"\0alice\0secret", Ok((None, "alice", "secret"))),
            (
                b"admin\0alice\0secret",
                Ok((Some("admin"), "alice", "secret")),
            ),
            (b"\0alice\0", Ok((None, "alice", ""))),
            (
                "\0j\u{f6}rg\0p\u{e4}ss".as_bytes(),
                Ok((None, "j\u{f6}rg", "p\u{e4}ss")),
            ),
            (b"\0\0secret", Err(SaslError::EmptyUsername)),
            (b"alice\0secret", Err(SaslError::Malformed)),
            (b"", Err(SaslError::Malformed)),
            (b"\0a\0b\0c", Err(SaslError::Malformed)),
            (b"\0alice\0\xff", Err(SaslError::Utf8)),
            (b"\0\xc3\0x", Err(SaslError::Utf8)),
        ];
        for (input, expected) in rows {
            let got = parse_plain(input).map(|c| {
                (
                    c.authzid.clone(),
                    c.username.clone(),
                    c.password.expose_secret().to_owned(),
                )
            });
            let want = expected
                .clone()
                .map(|(z, u, p)| (z.map(str::to_owned), u.to_owned(), p.to_owned()));
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn decode_plain_base64() {
        let c = decode_plain(b"AGFsaWNlAHNlY3JldA==").unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.expose_secret(), "secret");
        // padding is optional
        assert!(decode_plain(b"AGFsaWNlAHNlY3JldA").is_ok());
        assert_eq!(decode_plain(b"not base64!").unwrap_err(), SaslError::Base64);
        assert_eq!(decode_plain(b"").unwrap_err(), SaslError::Malformed);
        // Debug never shows the password
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn login_pieces() {
        assert_eq!(decode_login_username(b"YWxpY2U=").unwrap(), "alice");
        assert_eq!(
            decode_login_username(b"").unwrap_err(),
            SaslError::EmptyUsername
        );
        assert_eq!(decode_login_username(b"/w==").unwrap_err(), SaslError::Utf8);
        assert_eq!(
            decode_login_password(b"c2VjcmV0").unwrap().expose_secret(),
            "secret"
        );
        assert_eq!(decode_login_password(b"").unwrap().expose_secret(), "");
        assert_eq!(decode_login_password(b"%%").unwrap_err(), SaslError::Base64);
    }

    #[test]
    fn xoauth2_known_answer() {
        let r = xoauth2_initial_response(
            "someuser@example.com",
            &secret("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
        );
        // The example from Google's XOAUTH2 documentation.
        assert_eq!(
            r.expose_secret(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
    }

    #[test]
    fn oauthbearer_known_answer() {
        let r = oauthbearer_initial_response(
            "user@example.com",
            "server.example.com",
            143,
            &secret("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
        );
        let raw = decode_base64(r.expose_secret().as_bytes()).unwrap();
        // RFC 7628, section 4.1
        assert_eq!(
            &raw[..],
            b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
        let r = oauthbearer_initial_response("a,b=c", "h", 993, &secret("t"));
        let raw = decode_base64(r.expose_secret().as_bytes()).unwrap();
        assert_eq!(
            &raw[..],
            b"n,a=a=2Cb=3Dc,\x01host=h\x01port=993\x01auth=Bearer t\x01\x01"
        );
    }

    #[test]
    fn gs2_escape_table() {
        let rows = [
            ("", ""),
            ("plain", "plain"),
            (",", "=2C"),
            ("=", "=3D"),
            ("a=,b", "a=3D=2Cb"),
            ("=2C", "=3D2C"),
        ];
        for (input, expected) in rows {
            assert_eq!(gs2_escape(input), expected);
        }
    }

    #[test]
    fn error_challenge_table() {
        let enc = |s: &str| encode_base64(s.as_bytes());
        let rows: Vec<(String, Option<&str>)> = vec![
            (
                enc(r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#),
                Some("401"),
            ),
            (
                enc(r#"{"status":"invalid_token","scope":"x"}"#),
                Some("invalid_token"),
            ),
            (enc(r#"{"status":400}"#), Some("400")),
            (enc(r#"{"status":"a\r\nb"}"#), Some("ab")),
            (enc(r#"{"status":""}"#), None),
            (enc(r#"{"status":null}"#), None),
            (enc(r#"{"scope":"x"}"#), None),
            (enc("not json"), None),
            ("!!!".to_owned(), None),
        ];
        for (input, expected) in rows {
            assert_eq!(
                error_challenge_status(input.as_bytes()).as_deref(),
                expected,
                "{input}"
            );
        }
        let long = enc(&format!(r#"{{"status":"{}"}}"#, "x".repeat(500)));
        assert_eq!(
            error_challenge_status(long.as_bytes()).unwrap().len(),
            MAX_STATUS
        );
    }

    proptest! {
        #[test]
        fn plain_roundtrip(z in "[^\0]{0,10}", u in "[^\0]{1,10}", p in "[^\0]{0,10}") {
            let msg = format!("{z}\0{u}\0{p}");
            let c = decode_plain(encode_base64(msg.as_bytes()).as_bytes()).unwrap();
            prop_assert_eq!(c.authzid, (!z.is_empty()).then_some(z));
            prop_assert_eq!(c.username, u);
            prop_assert_eq!(c.password.expose_secret(), p);
        }

        #[test]
        fn gs2_escape_is_reversible(s in ".{0,20}") {
            let e = gs2_escape(&s).into_owned();
            prop_assert!(!e.contains(','));
            // decode left to right, as a GS2 server does
            let mut decoded = String::new();
            let mut rest = e.as_str();
            while let Some(i) = rest.find('=') {
                decoded.push_str(&rest[..i]);
                match &rest[i..i + 3] {
                    "=2C" => decoded.push(','),
                    "=3D" => decoded.push('='),
                    other => prop_assert!(false, "bad escape {}", other),
                }
                rest = &rest[i + 3..];
            }
            decoded.push_str(rest);
            prop_assert_eq!(decoded, s);
        }
    }
}
