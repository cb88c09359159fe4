//! The JWT bearer grant (RFC 7523 §2.1) of the test server: the assertion must be an
//! RS256 JWT signed by the configured public key, with `aud` = this server's token
//! URL, the configured `iss`, a `sub` (the mailbox the token is for), and `iat`/`exp`
//! at most one hour apart with `exp` in the future. The token issued introspects as
//! `sub`. No client authentication, as at Google.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde::Deserialize;

use super::error::OAuthError;

/// What [`super::AuthServer::set_jwt_public_key`] configured.
#[derive(Debug, Clone)]
pub(crate) struct JwtVerifier {
    /// RSAPublicKey (PKCS#1) DER, as ring wants it.
    pub public_key: Vec<u8>,
    /// Expected `aud`: the server's token URL.
    pub audience: String,
    /// Expected `iss` (the service account's `client_email`).
    pub issuer: String,
}

/// The claims checked and used.
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    #[serde(default)]
    pub scope: Option<String>,
    pub iat: u64,
    pub exp: u64,
}

/// Allowed clock skew for `iat`.
const SKEW: u64 = 60;

/// Checks `assertion`; the claims when it is valid.
pub(crate) fn verify(v: &JwtVerifier, assertion: &str, now: u64) -> Result<Claims, OAuthError> {
    let bad = OAuthError::InvalidGrant;
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("assertion is not a compact JWS"));
    };
    let decode = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| bad("bad base64url in assertion"))
    };
    let header: serde_json::Value =
        serde_json::from_slice(&decode(h)?).map_err(|_| bad("bad JWT header"))?;
    if header["alg"] != "RS256" {
        return Err(bad("assertion must be signed with RS256"));
    }
    let signed = &assertion[..h.len() + 1 + c.len()];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &v.public_key)
        .verify(signed.as_bytes(), &decode(s)?)
        .map_err(|_| bad("assertion signature does not verify"))?;
    let claims: Claims = serde_json::from_slice(&decode(c)?).map_err(|_| bad("bad JWT claims"))?;
    if claims.aud != v.audience {
        return Err(bad("assertion audience is not this token endpoint"));
    }
    if claims.iss != v.issuer {
        return Err(bad(
            "assertion issuer is not the configured service account",
        ));
    }
    if claims.exp <= now {
        return Err(bad("assertion expired"));
    }
    if claims.iat > now + SKEW || claims.exp <= claims.iat || claims.exp - claims.iat > 3600 {
        return Err(bad("assertion iat/exp out of range (at most one hour)"));
    }
    if claims.sub.is_empty() {
        return Err(bad("assertion has no sub"));
    }
    Ok(claims)
}

/// The RSAPublicKey inside an RSA SubjectPublicKeyInfo (DER), or the input itself if
/// it already is an RSAPublicKey. A minimal DER walk, enough for RSA keys.
pub(crate) fn rsa_public_key(der: &[u8]) -> Option<Vec<u8>> {
    // SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING { 0, RSAPublicKey } }
    let (tag, outer, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (first, _, rest) = tlv(outer)?;
    if first == 0x02 {
        return Some(der.to_vec()); // SEQUENCE { INTEGER n, INTEGER e }: already PKCS#1
    }
    let (bit, bits, _) = tlv(rest)?;
    match (first, bit, bits.split_first()) {
        (0x30, 0x03, Some((0, key))) => Some(key.to_vec()),
        _ => None,
    }
}

/// One DER element: (tag, contents, rest).
fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, d) = d.split_first()?;
    let (&l, mut d) = d.split_first()?;
    let len = if l < 0x80 {
        l as usize
    } else {
        let n = (l & 0x7f) as usize;
        if n == 0 || n > 4 || d.len() < n {
            return None;
        }
        let len = d[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        d = &d[n..];
        len
    };
    (d.len() >= len).then(|| (tag, &d[..len], &d[len..]))
}
