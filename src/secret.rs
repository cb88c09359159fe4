//! Helpers for secrets: constant-time comparison and redaction.
//!
//! Secrets travel as [`secrecy::SecretString`] / [`secrecy::SecretBox`], whose `Debug`
//! prints `[REDACTED]`. This module adds what secrecy does not have.

use subtle::ConstantTimeEq;

/// Compares two byte strings in time independent of where they differ.
/// (Length is not hidden, which is fine for random values of fixed length.)
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Fills a buffer with cryptographically secure random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("operating system random source failed");
    b
}

/// A random URL-safe token of `n` random bytes (base64url, no padding).
pub fn random_token(n: usize) -> String {
    use base64::Engine;
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("operating system random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn random_tokens_differ() {
        assert_ne!(random_token(16), random_token(16));
        assert_eq!(random_token(32).len(), 43);
    }
}
