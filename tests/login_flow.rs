//! The interactive login (authorization code + PKCE, loopback redirect) against the
//! project's test authorization server, with reqwest playing the browser.

use std::time::Duration;

use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::config::{Account, OAuthClient, Provider};
use oauth_mail_proxy::oauth::{
    FlowError, LoginOptions, TokenKey, TokenManager, TokenRecord, TokenStore, UrlSink, client,
    login_authorization_code,
};
use oauth_mail_proxy::proto::Mechanism;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use url::Url;

const USER: &str = "bob@example.com";

struct Fixture {
    srv: AuthServer,
    store: TokenStore,
    account: Account,
    _dir: tempfile::TempDir,
}

async fn fixture(cfg: AuthServerConfig) -> Fixture {
    let srv = AuthServer::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open_with_key(dir.path(), TokenKey::generate()).unwrap();
    let cfg = srv.config();
    let account = Account {
        username: "bob".into(),
        password_hash: String::new(),
        upstream_username: USER.into(),
        mechanism: Mechanism::Oauthbearer,
        template: None,
        service_account_key: None,
        encrypt_with: Default::default(),
        oauth: OAuthClient {
            provider: Provider::Custom,
            client_id: cfg.client_id.clone(),
            client_secret: (!cfg.client_secret.is_empty())
                .then(|| SecretString::from(cfg.client_secret.clone())),
            authorize_url: srv.authorize_url().parse().unwrap(),
            token_url: srv.token_url().parse().unwrap(),
            scopes: vec!["mail".into()],
            flow: Default::default(),
            device_authorization_url: None,
            refresh_url: srv.token_url().parse().unwrap(),
            token_scopes: None,
            login_hint: None,
            prompt: None,
            redirect_uri: None,
            revocation_url: None,
        },
    };
    Fixture {
        srv,
        store,
        account,
        _dir: dir,
    }
}

/// Starts the login in a task; returns it and the authorization URL it published.
async fn start_login(
    f: &Fixture,
    timeout: Duration,
) -> (JoinHandle<Result<TokenRecord, FlowError>>, Option<Url>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = LoginOptions {
        open_browser: false,
        timeout,
        redirect_port: 0,
        url_sink: UrlSink::Channel(tx),
        ..Default::default()
    };
    let (account, store) = (f.account.clone(), f.store.clone());
    let task = tokio::spawn(async move {
        let http = client::http_client().unwrap();
        login_authorization_code(&account, &store, &http, opts).await
    });
    let url = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap();
    (task, url)
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The "browser": follows the authorization server's redirect to our listener.
async fn browse(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn full_login(cfg: AuthServerConfig) {
    let f = fixture(cfg).await;
    // A stale needs-login record is replaced by the login.
    let stale = TokenRecord {
        account: "bob".into(),
        access_token: "old".into(),
        refresh_token: None,
        expires_at: Some(1),
        scopes: vec!["mail".into()],
        obtained_at: 1,
        last_refresh: None,
        needs_login: Some("refresh token rejected".into()),
        refresh_expires_at: None,
    };
    f.store.save("bob", &stale).unwrap();

    let (task, url) = start_login(&f, Duration::from_secs(20)).await;
    let url = url.unwrap();
    assert!(url.as_str().starts_with(&f.srv.authorize_url()), "{url}");
    assert_eq!(param(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(param(&url, "login_hint").as_deref(), Some(USER));
    assert_eq!(param(&url, "scope").as_deref(), Some("mail"));
    assert!(param(&url, "state").unwrap().len() >= 32);
    let redirect = Url::parse(&param(&url, "redirect_uri").unwrap()).unwrap();
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert_eq!(redirect.path(), "/");

    // Stray requests (a favicon) are answered 404 and do not end the wait.
    let favicon = redirect.join("/favicon.ico").unwrap();
    assert_eq!(browse(favicon.as_str()).await.0, 404);

    let (status, page) = browse(url.as_str()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("close this window"), "{page}");
    let rec = task.await.unwrap().unwrap();
    assert_eq!(f.srv.grants("authorization_code"), 1);
    assert!(rec.refresh_token.is_some() && rec.needs_login.is_none());
    assert_eq!(rec.scopes, vec!["mail"]);

    let saved = f.store.load("bob").unwrap().unwrap();
    assert_eq!(
        saved.access_token.expose_secret(),
        rec.access_token.expose_secret()
    );
    assert!(saved.needs_login.is_none() && saved.expires_at.is_some());

    // The manager hands out the stored token without another request.
    let mgr = TokenManager::new(
        f.store.clone(),
        client::http_client().unwrap(),
        Duration::from_secs(60),
    );
    let t = mgr.access_token(&f.account).await.unwrap();
    assert_eq!(t.expose_secret(), rec.access_token.expose_secret());
    assert_eq!(f.srv.token_requests(), 1);
    f.srv.shutdown().await;
}

#[tokio::test]
async fn login_stores_tokens() {
    full_login(AuthServerConfig::generated()).await;
}

#[tokio::test]
async fn login_with_public_client() {
    let mut cfg = AuthServerConfig::generated();
    cfg.client_secret = String::new();
    full_login(cfg).await;
}

#[tokio::test]
async fn denial_is_reported() {
    let f = fixture(AuthServerConfig::generated()).await;
    f.srv.set_deny(true);
    let (task, url) = start_login(&f, Duration::from_secs(20)).await;
    let (status, page) = browse(url.unwrap().as_str()).await;
    assert_eq!(status, 400);
    assert!(page.contains("denied"), "{page}");
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, FlowError::Denied { .. }), "{err:?}");
    assert_eq!(f.srv.token_requests(), 0);
    assert!(f.store.load("bob").unwrap().is_none());
    f.srv.shutdown().await;
}

#[tokio::test]
async fn state_mismatch_is_rejected() {
    let f = fixture(AuthServerConfig::generated()).await;
    let (task, url) = start_login(&f, Duration::from_secs(20)).await;
    let mut redirect = Url::parse(&param(&url.unwrap(), "redirect_uri").unwrap()).unwrap();
    redirect.set_query(Some("code=forged&state=not-the-state"));
    let (status, _) = browse(redirect.as_str()).await;
    assert_eq!(status, 400);
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, FlowError::StateMismatch), "{err:?}");
    assert_eq!(f.srv.token_requests(), 0);
    assert!(f.store.load("bob").unwrap().is_none());
    f.srv.shutdown().await;
}

#[tokio::test]
async fn times_out_without_redirect() {
    let f = fixture(AuthServerConfig::generated()).await;
    let (task, url) = start_login(&f, Duration::from_millis(300)).await;
    assert!(url.is_some());
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, FlowError::Timeout(_)), "{err:?}");
    f.srv.shutdown().await;
}

#[tokio::test]
async fn unreadable_token_file_fails_before_the_browser() {
    let f = fixture(AuthServerConfig::generated()).await;
    std::fs::write(f.store.path_for("bob"), b"not a token file").unwrap();
    let (task, url) = start_login(&f, Duration::from_secs(20)).await;
    assert!(url.is_none(), "no URL is published");
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, FlowError::Store(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains(&f.store.path_for("bob").display().to_string())
    );
    f.srv.shutdown().await;
}
