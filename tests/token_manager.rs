//! TokenManager against the project's test authorization server: single-flight
//! refresh, short-lived tokens, revoked grants, invalidation and transient failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::config::{Account, OAuthClient, Provider};
use oauth_mail_proxy::oauth::outcome::unix_now;
use oauth_mail_proxy::oauth::{
    TokenError, TokenKey, TokenManager, TokenRecord, TokenStore, client,
};
use oauth_mail_proxy::proto::Mechanism;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "alice@example.com";

async fn server(cfg: AuthServerConfig) -> AuthServer {
    AuthServer::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap()
}

fn account(name: &str, cfg: &AuthServerConfig, authorize: &str, token: &str) -> Account {
    Account {
        username: name.into(),
        password_hash: String::new(),
        upstream_username: USER.into(),
        mechanism: Mechanism::Xoauth2,
        template: None,
        service_account_key: None,
        encrypt_with: Default::default(),
        oauth: OAuthClient {
            provider: Provider::Custom,
            client_id: cfg.client_id.clone(),
            client_secret: (!cfg.client_secret.is_empty())
                .then(|| SecretString::from(cfg.client_secret.clone())),
            authorize_url: authorize.parse().unwrap(),
            token_url: token.parse().unwrap(),
            scopes: vec!["mail".into()],
            flow: Default::default(),
            device_authorization_url: None,
            refresh_url: token.parse().unwrap(),
            token_scopes: None,
            login_hint: None,
            prompt: None,
            redirect_uri: None,
            revocation_url: None,
        },
    }
}

fn account_for(srv: &AuthServer, name: &str) -> Account {
    account(name, srv.config(), &srv.authorize_url(), &srv.token_url())
}

fn record(name: &str, access: &str, refresh: Option<&str>, expires_at: u64) -> TokenRecord {
    TokenRecord {
        account: name.into(),
        access_token: access.into(),
        refresh_token: refresh.map(Into::into),
        expires_at: Some(expires_at),
        scopes: vec!["mail".into()],
        obtained_at: unix_now() - 100,
        last_refresh: None,
        needs_login: None,
        refresh_expires_at: None,
    }
}

fn store() -> (tempfile::TempDir, TokenStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open_with_key(dir.path(), TokenKey::generate()).unwrap();
    (dir, store)
}

fn manager(store: &TokenStore, margin: Duration) -> TokenManager {
    TokenManager::new(store.clone(), client::http_client().unwrap(), margin)
}

async fn active(srv: &AuthServer, token: &SecretString) -> bool {
    let cfg = srv.config();
    let v: serde_json::Value = reqwest::Client::new()
        .post(srv.introspect_url())
        .basic_auth(
            &cfg.introspect_client_id,
            Some(&cfg.introspect_client_secret),
        )
        .form(&[("token", token.expose_secret())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["active"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_calls_after_expiry_refresh_once() {
    let srv = server(AuthServerConfig::generated()).await;
    let (_dir, store) = store();
    let (access, refresh) = srv.mint_tokens(USER);
    store
        .save(
            "alice",
            &record("alice", &access, Some(&refresh), unix_now() - 10),
        )
        .unwrap();
    let mgr = manager(&store, Duration::from_secs(60));
    let acct = Arc::new(account_for(&srv, "alice"));

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (mgr, acct) = (mgr.clone(), acct.clone());
            tokio::spawn(async move { mgr.access_token(&acct).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap());
    }
    assert_eq!(srv.grants("refresh_token"), 1);
    assert_eq!(srv.token_requests(), 1);
    let first = tokens[0].expose_secret().to_owned();
    assert_ne!(first, access);
    assert!(tokens.iter().all(|t| t.expose_secret() == first));
    assert!(active(&srv, &tokens[0]).await);

    // Rotated refresh token persisted; the cached token is served without a request.
    let saved = store.load("alice").unwrap().unwrap();
    assert_eq!(saved.access_token.expose_secret(), first);
    assert_ne!(saved.refresh_token.unwrap().expose_secret(), refresh);
    assert!(saved.last_refresh.is_some() && saved.needs_login.is_none());
    mgr.access_token(&acct).await.unwrap();
    assert_eq!(srv.token_requests(), 1);
    let status = mgr.status("alice").unwrap();
    assert!(status.valid && status.has_refresh_token && status.needs_login.is_none());
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_second_tokens_keep_yielding_valid_tokens() {
    let mut cfg = AuthServerConfig::generated();
    cfg.token_lifetime = Duration::from_secs(2);
    let srv = server(cfg).await;
    let (_dir, store) = store();
    let (access, refresh) = srv.mint_tokens(USER);
    store
        .save(
            "alice",
            &record("alice", &access, Some(&refresh), unix_now() + 1),
        )
        .unwrap();
    let mgr = manager(&store, Duration::from_millis(500));
    let acct = account_for(&srv, "alice");
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut checks = 0;
    while tokio::time::Instant::now() < end {
        let t = mgr.access_token(&acct).await.unwrap();
        assert!(active(&srv, &t).await, "token handed out but inactive");
        checks += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let refreshes = srv.grants("refresh_token");
    assert!(checks > 10, "{checks}");
    assert!((2..=20).contains(&refreshes), "{refreshes} refreshes");
    srv.shutdown().await;
}

#[tokio::test]
async fn revoked_grant_needs_login_and_stops_requests() {
    let srv = server(AuthServerConfig::generated()).await;
    let (_dir, store) = store();
    let (access, refresh) = srv.mint_tokens(USER);
    store
        .save(
            "alice",
            &record("alice", &access, Some(&refresh), unix_now() - 1),
        )
        .unwrap();
    srv.revoke_user(USER);
    let mgr = manager(&store, Duration::from_secs(60));
    let acct = account_for(&srv, "alice");

    let err = mgr.access_token(&acct).await.unwrap_err();
    let TokenError::NeedsLogin { account, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(account, "alice");
    assert!(reason.contains("invalid_grant"), "{reason}");
    let msg = err.to_string();
    assert!(msg.contains("oauth-mail-proxy login alice"), "{msg}");
    assert!(!msg.contains(&refresh) && !msg.contains(&access));
    assert_eq!(srv.token_requests(), 1);

    for _ in 0..3 {
        assert!(matches!(
            mgr.access_token(&acct).await,
            Err(TokenError::NeedsLogin { .. })
        ));
    }
    // Persisted: a restarted manager fails fast too.
    let again = manager(&store, Duration::from_secs(60));
    assert!(matches!(
        again.access_token(&acct).await,
        Err(TokenError::NeedsLogin { .. })
    ));
    assert_eq!(srv.token_requests(), 1);
    assert!(store.load("alice").unwrap().unwrap().needs_login.is_some());
    assert!(mgr.status("alice").unwrap().needs_login.is_some());

    // A new login (written by another process) is picked up without a restart.
    let (access2, refresh2) = srv.mint_tokens(USER);
    let mut fresh = record("alice", &access2, Some(&refresh2), unix_now() + 3600);
    fresh.obtained_at = unix_now();
    store.save("alice", &fresh).unwrap();
    assert_eq!(
        mgr.access_token(&acct).await.unwrap().expose_secret(),
        access2
    );
    assert_eq!(srv.token_requests(), 1);
    srv.shutdown().await;
}

#[tokio::test]
async fn no_token_needs_login() {
    let srv = server(AuthServerConfig::generated()).await;
    let (_dir, store) = store();
    let mgr = manager(&store, Duration::from_secs(60));
    let err = mgr
        .access_token(&account_for(&srv, "bob"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TokenError::NeedsLogin { reason, .. } if reason.contains("no token stored")),
        "{err:?}"
    );
    // Expired without a refresh token.
    store
        .save("bob", &record("bob", "a", None, unix_now() - 5))
        .unwrap();
    let err = mgr
        .access_token(&account_for(&srv, "bob"))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::NeedsLogin { .. }), "{err:?}");
    assert_eq!(srv.token_requests(), 0);
    let status = mgr.status("nobody").unwrap();
    assert!(!status.stored && !status.valid);
    srv.shutdown().await;
}

#[tokio::test]
async fn invalidate_forces_one_refresh() {
    let srv = server(AuthServerConfig::generated()).await;
    let (_dir, store) = store();
    let (access, refresh) = srv.mint_tokens(USER);
    store
        .save(
            "alice",
            &record("alice", &access, Some(&refresh), unix_now() + 3600),
        )
        .unwrap();
    let mgr = manager(&store, Duration::from_secs(60));
    let acct = account_for(&srv, "alice");
    assert_eq!(
        mgr.access_token(&acct).await.unwrap().expose_secret(),
        access
    );
    assert_eq!(srv.token_requests(), 0);
    let old = SecretString::from(access.clone());
    mgr.invalidate("alice", &old);
    assert!(!mgr.status("alice").unwrap().valid);
    let new = mgr.access_token(&acct).await.unwrap();
    assert_ne!(new.expose_secret(), access);
    assert_eq!(
        mgr.access_token(&acct).await.unwrap().expose_secret(),
        new.expose_secret()
    );
    assert_eq!(srv.grants("refresh_token"), 1);
    // A late report about the old token does not discard the fresh one.
    mgr.invalidate("alice", &old);
    assert_eq!(
        mgr.access_token(&acct).await.unwrap().expose_secret(),
        new.expose_secret()
    );
    assert_eq!(srv.grants("refresh_token"), 1);
    srv.shutdown().await;
}

/// A token endpoint that always answers 503, counting requests.
async fn failing_endpoint() -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = s.read(&mut buf).await;
                let body = r#"{"error":"temporarily_unavailable"}"#;
                let resp = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (url, count)
}

#[tokio::test]
async fn transient_failures() {
    let cfg = AuthServerConfig::generated();
    let (token_url, requests) = failing_endpoint().await;
    let acct = account("carol", &cfg, "http://127.0.0.1:1/authorize", &token_url);
    let (_dir, store) = store();

    // Inside the margin but still valid: the old token is handed out.
    store
        .save(
            "carol",
            &record("carol", "still-good", Some("r"), unix_now() + 30),
        )
        .unwrap();
    let mgr = manager(&store, Duration::from_secs(60));
    assert_eq!(
        mgr.access_token(&acct).await.unwrap().expose_secret(),
        "still-good"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    // Within the retry backoff: no new request.
    assert_eq!(
        mgr.access_token(&acct).await.unwrap().expose_secret(),
        "still-good"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    assert!(
        mgr.status("carol")
            .unwrap()
            .last_error
            .unwrap()
            .contains("503")
    );

    // Expired: a transient error, which does not mark the account for login.
    store
        .save("carol", &record("carol", "old", Some("r"), unix_now() - 1))
        .unwrap();
    let mgr = manager(&store, Duration::from_secs(60)).with_retry_backoff(Duration::ZERO);
    for n in 2..4 {
        let err = mgr.access_token(&acct).await.unwrap_err();
        let TokenError::Transient(msg) = &err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains("HTTP 503") && msg.contains("temporarily_unavailable"),
            "{msg}"
        );
        assert_eq!(requests.load(Ordering::SeqCst), n);
    }
    assert!(store.load("carol").unwrap().unwrap().needs_login.is_none());

    // Network failure (nothing listening) is transient too.
    let dead = account(
        "carol",
        &cfg,
        "http://127.0.0.1:1/a",
        "http://127.0.0.1:1/token",
    );
    let err = mgr.access_token(&dead).await.unwrap_err();
    assert!(matches!(err, TokenError::Transient(_)), "{err:?}");
}
