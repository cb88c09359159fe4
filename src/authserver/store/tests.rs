//! Unit tests of the [`Store`]: code exchange, refresh rotation, revocation, expiry.

use super::*;
use crate::authserver::params::s256_challenge;

const VERIFIER: &str = "0123456789012345678901234567890123456789abc";

fn store_with_code() -> (Store, String) {
    let mut s = Store::new(Duration::from_secs(60));
    let code = s.new_code(CodeGrant {
        client_id: "c".into(),
        redirect_uri: "http://127.0.0.1:1/cb".into(),
        challenge: s256_challenge(VERIFIER),
        user: "bob@example.com".into(),
        scope: "mail".into(),
    });
    (s, code)
}

#[test]
fn code_exchange_checks_binding_and_is_single_use() {
    let (mut s, code) = store_with_code();
    let uri = "http://127.0.0.1:1/cb";
    let issued = s.redeem_code(&code, "c", uri, VERIFIER).unwrap();
    assert_eq!(issued.user, "bob@example.com");
    assert!(s.introspect(&issued.access_token).is_some());
    // Replay fails and revokes what the code produced.
    assert!(s.redeem_code(&code, "c", uri, VERIFIER).is_err());
    assert!(s.introspect(&issued.access_token).is_none());
    let rt = issued.refresh_token.unwrap();
    assert!(s.refresh(&rt, "c", None, true).is_err());

    for (client, uri2, verifier) in [
        ("other", uri, VERIFIER),
        ("c", "http://127.0.0.1:2/cb", VERIFIER),
        ("c", uri, "wrong-verifier-wrong-verifier-wrong-verifier"),
    ] {
        let (mut s, code) = store_with_code();
        let err = s.redeem_code(&code, client, uri2, verifier).unwrap_err();
        assert_eq!(err.code(), "invalid_grant");
    }
}

#[test]
fn refresh_rotation_and_scope() {
    let mut s = Store::new(Duration::from_secs(60));
    let first = s.issue_new("u", "c", "mail extra", true);
    let rt = first.refresh_token.unwrap();
    assert_eq!(
        s.refresh(&rt, "c", Some("other"), true).unwrap_err(),
        OAuthError::InvalidScope
    );
    let second = s.refresh(&rt, "c", Some("mail"), true).unwrap();
    assert_eq!(second.scope, "mail");
    assert!(
        s.refresh(&rt, "c", None, true).is_err(),
        "rotated token is dead"
    );
    let rt2 = second.refresh_token.unwrap();
    let third = s.refresh(&rt2, "c", None, false).unwrap();
    assert_eq!(third.refresh_token.as_deref(), Some(rt2.as_str()));
    s.revoke_user("u");
    assert!(s.refresh(&rt2, "c", None, false).is_err());
    assert!(s.introspect(&third.access_token).is_none());
}

#[test]
fn revocation() {
    let mut s = Store::new(Duration::from_secs(60));
    let a = s.issue_new("u", "c", "mail", true);
    let rt = a.refresh_token.unwrap();
    let b = s.refresh(&rt, "c", None, false).unwrap();
    let other = s.issue_new("u", "c", "mail", true);
    assert!(!s.revoke_token(&rt, "someone-else"));
    assert!(s.introspect(&a.access_token).is_some());
    // An access token alone.
    assert!(s.revoke_token(&a.access_token, "c"));
    assert!(s.introspect(&a.access_token).is_none());
    assert!(s.introspect(&b.access_token).is_some());
    // A refresh token takes its family, not other grants.
    assert!(s.revoke_token(&rt, "c"));
    assert!(s.introspect(&b.access_token).is_none());
    assert!(s.refresh(&rt, "c", None, false).is_err());
    assert!(s.introspect(&other.access_token).is_some());
    assert!(!s.revoke_token(&rt, "c"), "already gone");
}

#[test]
fn issued_debug_is_redacted() {
    let mut s = Store::new(Duration::from_secs(60));
    let t = s.issue_new("u", "c", "mail", true);
    let dbg = format!("{t:?}");
    let rt = t.refresh_token.as_deref().unwrap();
    assert!(
        dbg.contains("[REDACTED]") && !dbg.contains(&t.access_token) && !dbg.contains(rt),
        "{dbg}"
    );
}

#[test]
fn access_tokens_expire() {
    let mut s = Store::new(Duration::from_millis(0));
    let t = s.issue_new("u", "c", "mail", false);
    assert!(t.refresh_token.is_none());
    assert!(s.introspect(&t.access_token).is_none());
    s.set_lifetime(Duration::from_millis(1500));
    assert_eq!(s.issue_new("u", "c", "mail", false).expires_in, 2);
}
