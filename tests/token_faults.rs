//! Token endpoint faults: with an expired access token, a client login through the
//! proxy while the token endpoint is down, failing (5xx, 429, HTML, JSON without a
//! token), slow or hanging gets its protocol's temporary error (IMAP
//! `NO [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`, SMTP `454 4.7.0`), the stored refresh
//! token is kept, the account is not marked as needing `login`, the account backs off
//! (honouring `Retry-After`), and once the endpoint is back a login succeeds. The
//! client-credentials fetch (no refresh token) backs off the same way.

mod common;

use std::time::Duration;

use common::process;
use common::proxy::{AccountSpec, ListenerSpec, TestProxy, write_config};
use common::rig::{HOUR, Rig, USER};
use common::{ImapClient, Pop3Client, SmtpClient, plain};
use oauth_mail_proxy::authserver::TokenFault;
use oauth_mail_proxy::oauth::{TokenStore, client};
use secrecy::ExposeSecret;
use tokio::time::Instant;

/// Stores tokens whose access token has expired (the refresh token is good), and has
/// the server issue one-hour tokens from now on. Returns the refresh token.
fn store_expired(rig: &Rig) -> String {
    let (_, refresh) = rig.store_tokens(Duration::ZERO);
    rig.auth.set_token_lifetime(HOUR);
    refresh
}

/// The stored refresh token is still `refresh` and the account is not marked as
/// needing `login`.
fn assert_kept(rig: &Rig, refresh: &str, what: &str) {
    let rec = TokenStore::open(&rig.dir.path().join("state"))
        .unwrap()
        .load(USER)
        .unwrap()
        .expect("record still stored");
    assert_eq!(
        rec.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some(refresh),
        "{what}: refresh token changed"
    );
    assert!(rec.needs_login.is_none(), "{what}: {:?}", rec.needs_login);
}

async fn proxy_with(rig: &Rig, listener: ListenerSpec, account: AccountSpec<'_>) -> TestProxy {
    let path = write_config(rig.dir.path(), &[listener], &[account]);
    TestProxy::start(&path).await
}

async fn imap_login(port: u16, password: &str) -> String {
    let mut c = ImapClient::connect(port).await;
    c.conn.set_timeout(Duration::from_secs(60));
    c.command(&format!("LOGIN {USER} \"{password}\""))
        .await
        .tagged
}

async fn pop3_pass(port: u16, password: &str) -> String {
    let mut c = Pop3Client::connect(port).await;
    let r = c.command(&format!("USER {USER}")).await;
    assert!(r.starts_with("+OK"), "{r}");
    c.command(&format!("PASS {password}")).await
}

fn temporary_imap(tagged: &str) -> bool {
    tagged.starts_with("NO [UNAVAILABLE]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_gives_imap_a_temporary_error_and_keeps_the_refresh_token() {
    let rig = Rig::start().await;
    let refresh = store_expired(&rig);
    let faults = [
        ("503", Some(TokenFault::Status(503))),
        ("500", Some(TokenFault::Status(500))),
        ("429", Some(TokenFault::TooManyRequests { retry_after: 1 })),
        ("html", Some(TokenFault::Html)),
        ("no access_token", Some(TokenFault::NoAccessToken)),
        ("down", None),
    ];
    for (what, fault) in faults {
        let closed = format!("http://127.0.0.1:{}/token", process::free_port());
        let mut account = rig.account("xoauth2");
        match fault {
            Some(f) => rig.auth.set_token_fault(Some(f)),
            None => account.token_url = &closed,
        }
        let proxy = proxy_with(&rig, rig.listener("imap", "none", "implicit"), account).await;
        let port = proxy.addrs[0].port();
        let before = rig.auth.token_requests();
        let tagged = imap_login(port, &rig.password).await;
        assert!(temporary_imap(&tagged), "{what}: {tagged}");
        let expected = u64::from(fault.is_some());
        assert_eq!(rig.auth.token_requests() - before, expected, "{what}");
        assert_kept(&rig, &refresh, what);
        proxy.stop().await;
    }
    assert_eq!(rig.auth.grants("refresh_token"), 0);

    // `status --json` does not ask for a login either.
    rig.auth.set_token_fault(None);
    let cfg = write_config(
        rig.dir.path(),
        &[rig.listener("imap", "none", "implicit")],
        &[rig.account("xoauth2")],
    );
    let out = process::run_with_config(&cfg, &["status", "--json"]).await;
    assert!(out.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["needs_login"], false, "{}", out.stdout);
    assert_eq!(v[0]["refresh_token_present"], true, "{}", out.stdout);

    // The endpoint is back: the same refresh token works.
    let proxy = proxy_with(
        &rig,
        rig.listener("imap", "none", "implicit"),
        rig.account("xoauth2"),
    )
    .await;
    let tagged = imap_login(proxy.addrs[0].port(), &rig.password).await;
    assert!(tagged.starts_with("OK"), "{tagged}");
    assert_eq!(rig.auth.grants("refresh_token"), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_without_new_requests() {
    let rig = Rig::start().await;
    let refresh = store_expired(&rig);
    let listener = || rig.listener("imap", "none", "implicit");

    // Retry-After: 30. The second login right after makes no request.
    rig.auth
        .set_token_fault(Some(TokenFault::TooManyRequests { retry_after: 30 }));
    let proxy = proxy_with(&rig, listener(), rig.account("xoauth2")).await;
    let port = proxy.addrs[0].port();
    let tagged = imap_login(port, &rig.password).await;
    assert!(temporary_imap(&tagged), "{tagged}");
    let requests = rig.auth.token_requests();
    // Even with the endpoint healthy again, and after the 1 s base backoff, the
    // 30 s wait holds.
    rig.auth.set_token_fault(None);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    for _ in 0..3 {
        let tagged = imap_login(port, &rig.password).await;
        assert!(temporary_imap(&tagged), "{tagged}");
    }
    assert_eq!(
        rig.auth.token_requests(),
        requests,
        "requests during Retry-After"
    );
    assert_kept(&rig, &refresh, "429");
    proxy.stop().await;

    // Retry-After: 2, then the fault clears: no request before 2 s, a login after.
    rig.auth
        .set_token_fault(Some(TokenFault::TooManyRequests { retry_after: 2 }));
    let proxy = proxy_with(&rig, listener(), rig.account("xoauth2")).await;
    let port = proxy.addrs[0].port();
    let failed_at = Instant::now();
    assert!(temporary_imap(&imap_login(port, &rig.password).await));
    rig.auth.set_token_fault(None);
    let requests = rig.auth.token_requests();
    let tagged = imap_login(port, &rig.password).await;
    if failed_at.elapsed() < Duration::from_secs(2) {
        assert!(temporary_imap(&tagged), "{tagged}");
        assert_eq!(rig.auth.token_requests(), requests);
    }
    tokio::time::sleep_until(failed_at + Duration::from_millis(2200)).await;
    let tagged = imap_login(port, &rig.password).await;
    assert!(tagged.starts_with("OK"), "{tagged}");
    assert_eq!(rig.auth.grants("refresh_token"), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop3_gets_sys_temp_and_recovers_after_the_backoff() {
    let rig = Rig::start().await;
    let refresh = store_expired(&rig);
    rig.auth.set_token_fault(Some(TokenFault::Status(502)));
    let proxy = proxy_with(
        &rig,
        rig.listener("pop3", "none", "implicit"),
        rig.account("xoauth2"),
    )
    .await;
    let port = proxy.addrs[0].port();
    let failed_at = Instant::now();
    let r = pop3_pass(port, &rig.password).await;
    assert!(r.starts_with("-ERR [SYS/TEMP]"), "{r}");
    assert_kept(&rig, &refresh, "502");
    // The first failure backs off for 1 s; after it, with the endpoint back, a login.
    rig.auth.set_token_fault(None);
    tokio::time::sleep_until(failed_at + Duration::from_millis(1200)).await;
    let r = pop3_pass(port, &rig.password).await;
    assert!(r.starts_with("+OK"), "{r}");
    assert_eq!(rig.auth.grants("refresh_token"), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_gets_454_on_html() {
    let rig = Rig::start().await;
    let refresh = store_expired(&rig);
    rig.auth.set_token_fault(Some(TokenFault::Html));
    let proxy = proxy_with(
        &rig,
        rig.listener("smtp", "none", "starttls"),
        rig.account("xoauth2"),
    )
    .await;
    let mut c = SmtpClient::connect(proxy.addrs[0].port()).await;
    c.ehlo("client.example.com").await;
    let a = c
        .auth("PLAIN", Some(&plain(USER, &rig.password)), &[])
        .await;
    assert_eq!(a.reply.code, 454, "{a:?}");
    assert!(a.reply.lines[0].starts_with("4.7.0"), "{a:?}");
    assert_kept(&rig, &refresh, "html");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_endpoint_works_and_a_hanging_one_is_cut_off() {
    let rig = Rig::start().await;
    let refresh = store_expired(&rig);
    let proxy = proxy_with(
        &rig,
        rig.listener("imap", "none", "implicit"),
        rig.account("xoauth2"),
    )
    .await;
    let port = proxy.addrs[0].port();

    rig.auth.set_token_fault(Some(TokenFault::Hang));
    let started = Instant::now();
    let tagged = imap_login(port, &rig.password).await;
    let took = started.elapsed();
    assert!(temporary_imap(&tagged), "{tagged}");
    // Bounded by the HTTP client's request timeout (plus slack for a loaded machine).
    let bound = client::REQUEST_TIMEOUT + Duration::from_secs(5);
    assert!(took < bound, "hanging endpoint: reply after {took:?}");
    println!("hanging token endpoint: the client's NO [UNAVAILABLE] came after {took:?}");
    assert_kept(&rig, &refresh, "hang");

    // A slow but working endpoint (after the 1 s backoff) is waited for.
    rig.auth
        .set_token_fault(Some(TokenFault::Slow(Duration::from_secs(2))));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let tagged = imap_login(port, &rig.password).await;
    assert!(tagged.starts_with("OK"), "{tagged}");
    assert_eq!(rig.auth.grants("refresh_token"), 1);
    proxy.stop().await;
}

/// A TokenManager-level account of `srv` with `flow`.
fn manager_account(
    srv: &oauth_mail_proxy::authserver::AuthServer,
    flow: oauth_mail_proxy::config::Flow,
) -> oauth_mail_proxy::config::Account {
    use oauth_mail_proxy::config::{Account, OAuthClient, Provider};
    let cfg = srv.config();
    let url = |u: String| u.parse::<url::Url>().unwrap();
    Account {
        username: USER.into(),
        password_hash: String::new(),
        upstream_username: USER.into(),
        mechanism: oauth_mail_proxy::proto::Mechanism::Xoauth2,
        template: None,
        service_account_key: None,
        encrypt_with: Default::default(),
        oauth: OAuthClient {
            provider: Provider::Custom,
            client_id: cfg.client_id.clone(),
            client_secret: Some(cfg.client_secret.clone().into()),
            authorize_url: url(srv.authorize_url()),
            token_url: url(srv.token_url()),
            scopes: vec!["mail".into()],
            flow,
            device_authorization_url: None,
            refresh_url: url(srv.token_url()),
            token_scopes: None,
            login_hint: None,
            prompt: None,
            redirect_uri: None,
            revocation_url: None,
        },
    }
}

/// The same faults for a flow without refresh tokens (client credentials): the
/// reason names HTML, `Retry-After` holds requests back, and the fetch works after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_fetches_back_off_too() {
    use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
    use oauth_mail_proxy::config::Flow;
    use oauth_mail_proxy::oauth::{TokenError, TokenKey, TokenManager};
    let srv = AuthServer::start(
        "127.0.0.1:0".parse().unwrap(),
        AuthServerConfig::generated(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open_with_key(dir.path(), TokenKey::generate()).unwrap();
    let acct = manager_account(&srv, Flow::ClientCredentials);
    let manager = |base: Duration| {
        TokenManager::new(
            store.clone(),
            client::http_client().unwrap(),
            Duration::from_secs(1),
        )
        .with_retry_backoff(base)
    };

    srv.set_token_fault(Some(TokenFault::Html));
    let mgr = manager(Duration::ZERO);
    let err = mgr.access_token(&acct).await.unwrap_err();
    let TokenError::Transient(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("HTML instead of JSON"), "{msg}");
    assert!(!msg.contains("Sign in"), "the page is not quoted: {msg}");

    srv.set_token_fault(Some(TokenFault::TooManyRequests { retry_after: 30 }));
    let err = mgr.access_token(&acct).await.unwrap_err();
    assert!(matches!(err, TokenError::Transient(_)), "{err:?}");
    let requests = srv.token_requests();
    srv.set_token_fault(None);
    // A zero base backoff, but the server's Retry-After: 30 holds.
    let err = mgr.access_token(&acct).await.unwrap_err();
    assert!(matches!(err, TokenError::Transient(_)), "{err:?}");
    assert_eq!(srv.token_requests(), requests);
    assert!(
        mgr.status(USER)
            .unwrap()
            .last_error
            .unwrap()
            .contains("429")
    );

    // A new manager (a restart) has no wait: the fetch works.
    let mgr = manager(Duration::ZERO);
    assert!(mgr.access_token(&acct).await.is_ok());
    assert_eq!(srv.grants("client_credentials"), 1);
}
