//! Every type of this module (and the test authorization server's settings) that
//! holds a token, a password, a client secret, a key or a code prints `[REDACTED]`
//! in `Debug`, never the value. (The secrets live in `SecretString` / `Zeroizing`,
//! which also wipe them on drop.)

use secrecy::SecretString;

use super::loopback::Callback;
use super::outcome::RefreshOutcome;
use super::{TokenKey, TokenRecord, TokenStore};
use crate::authserver::AuthServerConfig;
use crate::config::{Flow, OAuthClient, Provider};

fn secret(what: &str) -> String {
    format!("{what}-{}", crate::secret::random_token(16))
}

/// `dbg` contains none of `secrets` and says `[REDACTED]`.
fn assert_redacted(what: &str, dbg: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!dbg.contains(s), "{what} shows a secret: {dbg}");
    }
    assert!(dbg.contains("REDACTED"), "{what}: {dbg}");
}

fn record(access: &str, refresh: &str) -> TokenRecord {
    TokenRecord {
        account: "alice".into(),
        access_token: access.into(),
        refresh_token: Some(refresh.into()),
        expires_at: Some(1),
        scopes: vec!["mail".into()],
        obtained_at: 0,
        last_refresh: None,
        needs_login: None,
        refresh_expires_at: None,
    }
}

#[test]
fn secrets_never_appear_in_debug() {
    let (access, refresh) = (secret("access"), secret("refresh"));
    let rec = record(&access, &refresh);
    assert_redacted("TokenRecord", &format!("{rec:?}"), &[&access, &refresh]);
    let outcome = RefreshOutcome::Refreshed(rec.clone());
    assert_redacted(
        "RefreshOutcome",
        &format!("{outcome:?}"),
        &[&access, &refresh],
    );

    let key = TokenKey::generate();
    let b64 = key.to_base64();
    let dir = tempfile::tempdir().unwrap();
    let password = secret("password");
    let store = TokenStore::open_with_key(dir.path(), key.clone())
        .unwrap()
        .with_password("alice", SecretString::from(password.clone()));
    assert_redacted("TokenKey", &format!("{key:?}"), &[b64.as_str()]);
    assert_redacted(
        "TokenStore",
        &format!("{store:?}"),
        &[b64.as_str(), &password],
    );

    let code = secret("code");
    let cb = Callback::Code(SecretString::from(code.clone()));
    assert_redacted("Callback", &format!("{cb:?}"), &[&code]);

    let client_secret = secret("client-secret");
    let url: url::Url = "https://auth.example/token".parse().unwrap();
    let client = OAuthClient {
        provider: Provider::Custom,
        client_id: "cid".into(),
        client_secret: Some(SecretString::from(client_secret.clone())),
        authorize_url: url.clone(),
        token_url: url.clone(),
        scopes: vec![],
        flow: Flow::AuthorizationCode,
        device_authorization_url: None,
        refresh_url: url,
        token_scopes: None,
        login_hint: None,
        prompt: None,
        redirect_uri: None,
        revocation_url: None,
    };
    assert_redacted("OAuthClient", &format!("{client:?}"), &[&client_secret]);

    let cfg = AuthServerConfig::generated();
    assert_redacted(
        "AuthServerConfig",
        &format!("{cfg:?}"),
        &[&cfg.client_secret, &cfg.introspect_client_secret],
    );
}
