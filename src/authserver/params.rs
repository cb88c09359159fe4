//! Request decoding shared by the endpoints: form/query parameters, HTTP Basic and
//! Bearer credentials, client authentication and PKCE.

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use super::error::OAuthError;
use crate::secret::ct_eq;

/// Decoded `application/x-www-form-urlencoded` parameters (body or query string).
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses form-encoded bytes. A parameter given twice is an error
    /// (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more
    /// than once").
    pub(crate) fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if out.iter().any(|(seen, _)| *seen == k) {
                return Err(OAuthError::InvalidRequest("a parameter was repeated"));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(out))
    }

    /// The value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or `invalid_request` with `missing` as the description.
    pub(crate) fn require(&self, name: &str, missing: &'static str) -> Result<&str, OAuthError> {
        self.get(name).ok_or(OAuthError::InvalidRequest(missing))
    }
}

/// True when the request says its body is a form.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn authorization<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// `Authorization: Bearer TOKEN`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    authorization(headers, "Bearer").filter(|t| !t.is_empty())
}

/// `Authorization: Basic ...` decoded into (id, secret). Each half is form-decoded,
/// as RFC 6749 §2.3.1 asks clients to form-encode them before Base64.
/// `Some(Err)` when the header is present but malformed.
fn basic(headers: &HeaderMap) -> Option<Result<(String, String), OAuthError>> {
    let encoded = authorization(headers, "Basic")?;
    let malformed = OAuthError::InvalidRequest("malformed HTTP Basic credentials");
    let decoded = match STANDARD
        .decode(encoded)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    {
        Some(d) => d,
        None => return Some(Err(malformed)),
    };
    Some(match decoded.split_once(':') {
        Some((id, secret)) => Ok((form_decode(id), form_decode(secret))),
        None => Err(malformed),
    })
}

/// Percent-decoding with `+` as space; invalid escapes are kept literally.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Authenticates a client per RFC 6749 §2.3.1: HTTP Basic, or `client_id` and
/// `client_secret` in the body, never both. A client configured with an empty secret
/// is public and may send `client_id` alone.
pub(crate) fn authenticate_client(
    headers: &HeaderMap,
    params: &Params,
    expected_id: &str,
    expected_secret: &str,
) -> Result<(), OAuthError> {
    let (id, secret) = match basic(headers) {
        Some(Err(e)) => return Err(e),
        Some(Ok((id, secret))) => {
            if params.get("client_secret").is_some() {
                return Err(OAuthError::InvalidRequest(
                    "more than one client authentication method",
                ));
            }
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::InvalidRequest(
                    "client_id differs from HTTP Basic",
                ));
            }
            (id, secret)
        }
        None => match params.get("client_id") {
            Some(id) => (
                id.to_owned(),
                params.get("client_secret").unwrap_or_default().to_owned(),
            ),
            None => return Err(OAuthError::InvalidClient),
        },
    };
    if ct_eq(id.as_bytes(), expected_id.as_bytes())
        && ct_eq(secret.as_bytes(), expected_secret.as_bytes())
    {
        Ok(())
    } else {
        Err(OAuthError::InvalidClient)
    }
}

/// True when `s` is a valid PKCE verifier or S256 challenge alphabet and length
/// (RFC 7636 §4.1: 43..=128 characters of `[A-Za-z0-9-._~]`).
pub(crate) fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Checks a verifier against a stored S256 challenge in constant time.
pub(crate) fn verify_pkce(verifier: &str, challenge: &str) -> bool {
    is_pkce_string(verifier) && ct_eq(s256_challenge(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            s256_challenge(v),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verify_pkce(
            v,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verify_pkce("short", &s256_challenge("short")));
    }

    #[test]
    fn form_decoding() {
        for (input, want) in [
            ("a%3Ab", "a:b"),
            ("a+b", "a b"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("%41", "A"),
            ("x%4", "x%4"),
        ] {
            assert_eq!(form_decode(input), want, "{input}");
        }
    }

    #[test]
    fn params_reject_repeats_and_treat_empty_as_absent() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=&b=x%20y").unwrap();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x y"));
    }

    fn headers_basic(id_secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(id_secret));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn client_authentication_methods() {
        let none = Params::default();
        let ok = |h: &HeaderMap, p: &Params| authenticate_client(h, p, "cid", "s:e");
        assert_eq!(ok(&headers_basic("cid:s%3Ae"), &none), Ok(()));
        assert_eq!(ok(&headers_basic("cid:s:e"), &none), Ok(()));
        assert_eq!(
            ok(&headers_basic("cid:bad"), &none),
            Err(OAuthError::InvalidClient)
        );
        let body = Params::parse(b"client_id=cid&client_secret=s%3Ae").unwrap();
        assert_eq!(ok(&HeaderMap::new(), &body), Ok(()));
        assert!(matches!(
            ok(&headers_basic("cid:s%3Ae"), &body),
            Err(OAuthError::InvalidRequest(_))
        ));
        assert_eq!(ok(&HeaderMap::new(), &none), Err(OAuthError::InvalidClient));
        let public = Params::parse(b"client_id=pub").unwrap();
        assert_eq!(
            authenticate_client(&HeaderMap::new(), &public, "pub", ""),
            Ok(())
        );
    }
}
