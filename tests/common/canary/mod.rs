//! The secrets canary: a list of planted secrets and every form they could be logged
//! in, a search of any text for them, and an HTTP tee that records what went to the
//! token endpoint and back (request and response bodies) so the values that only
//! travel there (the PKCE verifier, the authorization code, refreshed tokens) can be
//! planted too.
//!
//! Forms searched for, per secret: raw, URL-encoded (`+` and `%20`), hex, Rust
//! `escape_default`, the `Debug` of its bytes, and base64 (standard and URL-safe
//! alphabets) at each of the three alignments: for `prefix + secret` with prefixes of
//! 0, 1 and 2 bytes, the part of the encoding that depends only on the secret's bytes. Random secrets are also searched
//! for in 12-character pieces, so a truncated token counts as a leak.
//!
//! The proxy runs with its admin listener: `/metrics`, `/api/accounts` and the
//! overview page are fetched at the end of every canary test and searched too.

mod rig;
mod tee;

pub use rig::*;
pub use tee::*;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use secrecy::{ExposeSecret, SecretString};

use oauth_mail_proxy::proto::sasl::{oauthbearer_initial_response, xoauth2_initial_response};

/// Every secret of a test: name, value, and whether it is random throughout (then
/// pieces of it count as leaks too). The same value may be added more than once.
#[derive(Default)]
pub struct Secrets(Vec<(String, String, bool)>);

/// The part of the base64 encoding of `prefix + secret` (prefix of `align` bytes)
/// that depends only on the secret's bytes: the 4-character groups lying wholly
/// inside it.
pub fn aligned_base64(engine: &impl Engine, secret: &[u8], align: usize) -> String {
    let mut input = vec![0xA5u8; align];
    input.extend_from_slice(secret);
    let enc = engine.encode(&input);
    let first = align.div_ceil(3) * 4;
    let last = input.len() / 3 * 4;
    enc.get(first..last).unwrap_or("").to_string()
}

impl Secrets {
    /// A random secret: a token, a password, a key, a code.
    pub fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        assert!(value.len() >= 16, "{value:?} is too short to search for");
        self.0.push((name.into(), value, true));
    }

    /// An encoded payload holding secrets next to known text (a SASL response).
    pub fn add_payload(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        assert!(value.len() >= 16, "{value:?} is too short to search for");
        self.0.push((name.into(), value, false));
    }

    /// A SASL message (before base64) holding a secret: its base64 as a payload.
    pub fn add_sasl(&mut self, name: impl Into<String>, raw: impl AsRef<[u8]>) {
        self.add_payload(name, STANDARD.encode(raw));
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `value` was planted (under any name).
    pub fn contains(&self, value: &str) -> bool {
        self.0.iter().any(|(_, v, _)| v == value)
    }

    /// An access token and what the proxy sends upstream with it: the XOAUTH2 and the
    /// OAUTHBEARER initial responses (for every upstream port it may be sent to).
    pub fn add_access_token(&mut self, user: &str, at: &SecretString, ports: &[u16]) {
        self.add(format!("access token of {user}"), at.expose_secret());
        let ir = xoauth2_initial_response(user, at);
        self.add_payload(format!("XOAUTH2 line of {user}"), ir.expose_secret());
        for &port in ports {
            let ir = oauthbearer_initial_response(user, "localhost", port, at);
            let name = format!("OAUTHBEARER line of {user} (port {port})");
            self.add_payload(name, ir.expose_secret());
        }
    }

    /// Every form a secret could be logged in.
    pub fn forms(name: &str, value: &str, random: bool) -> Vec<(String, String)> {
        let b = value.as_bytes();
        let url = url::form_urlencoded::byte_serialize(b).collect::<String>();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let mut forms = vec![
            ("raw".to_string(), value.to_string()),
            ("url-encoded".into(), url.clone()),
            ("url-encoded (%20)".into(), url.replace('+', "%20")),
            ("hex".into(), hex),
            ("escaped".into(), value.escape_default().to_string()),
            // `{:?}` of the bytes: "[112, 119, ...]"
            (
                "bytes".into(),
                format!("{b:?}").trim_matches(['[', ']']).to_string(),
            ),
        ];
        for align in 0..3 {
            for (alphabet, enc) in [
                ("base64", aligned_base64(&STANDARD, b, align)),
                ("base64url", aligned_base64(&URL_SAFE, b, align)),
            ] {
                assert!(enc.len() >= 12, "{name}: too short for base64 at {align}");
                forms.push((format!("{alphabet} at alignment {align}"), enc));
            }
        }
        // 12 random base64 characters carry 72 bits: they never occur by chance.
        if random {
            let chars: Vec<char> = value.chars().collect();
            for w in chars.windows(12).step_by(4) {
                forms.push(("piece".into(), w.iter().collect()));
            }
        }
        forms
            .into_iter()
            .map(|(form, v)| (format!("{name} ({form})"), v))
            .collect()
    }

    /// The secrets (and forms) that occur in `text`, with the line they are in.
    pub fn leaks(&self, text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (name, value, random) in &self.0 {
            for (what, form) in Self::forms(name, value, *random) {
                if let Some(at) = text.find(&form) {
                    let start = text[..at].rfind('\n').map_or(0, |p| p + 1);
                    let end = text[at..].find('\n').map_or(text.len(), |p| at + p);
                    found.push(format!("{what}: in line {:?}", &text[start..end]));
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }

    /// Panics, listing the leaks, when any secret occurs in `text`.
    pub fn assert_clean(&self, what: &str, text: &str) {
        let leaks = self.leaks(text);
        assert!(
            leaks.is_empty(),
            "secrets in {what} ({} bytes searched):\n{}",
            text.len(),
            leaks.join("\n")
        );
    }

    /// Checks that the search catches each way a secret can be logged: `secret` raw,
    /// base64 at every alignment, URL-encoded, truncated, and inside `payload` (a SASL
    /// response holding it). Both must have been added.
    pub fn assert_search_works(&self, secret: &str, payload: &str) {
        assert!(self.contains(secret) && self.contains(payload));
        let url = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>();
        let mut planted = vec![
            format!("token={secret}"),
            format!("token={}...", &secret[..14]),
            format!("pw={url}"),
            format!("pw={}", url.replace('+', "%20")),
            format!("resp={payload}"),
        ];
        for prefix in ["", "a", "ab", "abc"] {
            let line = STANDARD.encode(format!("{prefix}{secret}\x01"));
            planted.push(format!("C: {line}"));
            let line = URL_SAFE.encode(format!("{prefix}{secret}"));
            planted.push(format!("C: {line}"));
        }
        for p in planted {
            assert!(!self.leaks(&format!("x\n{p}\ny")).is_empty(), "missed: {p}");
        }
    }
}
