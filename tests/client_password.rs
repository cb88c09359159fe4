//! `encrypt_with = "client-password"`, end to end through the proxy to a real
//! Dovecot: the token record is sealed with the client's own local password, the
//! proxy opens and refreshes it only during that client's login, the file holds no
//! token, and a wrong password (or an app password) gets the normal NO and leaves the
//! file as it was.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use common::ImapClient;
use common::process;
use common::proxy::{AccountSpec, TestProxy, write_config};
use common::rig::{HOUR, Rig, USER};
use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::oauth::{
    LoginOptions, TokenRecord, TokenStore, UrlSink, client, login_authorization_code,
};
use secrecy::{ExposeSecret, SecretString};

const EXTRA: &str = "encrypt_with = \"client-password\"\n";

fn config(rig: &Rig) -> PathBuf {
    let account = AccountSpec {
        extra: EXTRA,
        ..rig.account("xoauth2")
    };
    write_config(
        rig.dir.path(),
        &[rig.listener("imap", "none", "implicit")],
        &[account],
    )
}

fn state(rig: &Rig) -> PathBuf {
    rig.dir.path().join("state")
}

fn token_file(rig: &Rig) -> PathBuf {
    TokenStore::open(&state(rig)).unwrap().path_for(USER)
}

/// Stores fresh tokens for USER sealed with the rig's local password.
fn store_sealed(rig: &Rig, lifetime: Duration) -> (String, String) {
    rig.auth.set_token_lifetime(lifetime);
    let (access, refresh) = rig.auth.mint_tokens(USER);
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    let rec = TokenRecord {
        account: USER.into(),
        access_token: SecretString::from(access.clone()),
        refresh_token: Some(SecretString::from(refresh.clone())),
        expires_at: Some(now + lifetime.as_secs()),
        scopes: vec!["mail".into()],
        obtained_at: now,
        last_refresh: None,
        needs_login: None,
        refresh_expires_at: None,
    };
    TokenStore::open(&state(rig))
        .unwrap()
        .save_with_password(USER, &rec, &SecretString::from(rig.password.clone()))
        .unwrap();
    (access, refresh)
}

fn load_sealed(rig: &Rig) -> TokenRecord {
    TokenStore::open(&state(rig))
        .unwrap()
        .load_with_password(USER, &SecretString::from(rig.password.clone()))
        .unwrap()
        .unwrap()
}

/// The file holds none of the secrets, raw or in base64 (either alphabet).
fn assert_sealed(path: &Path, secrets: &[&str]) {
    let data = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&data);
    for s in secrets {
        let b64 = base64::engine::general_purpose::STANDARD.encode(s);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let raw = s.as_bytes();
        assert!(
            !data.windows(raw.len()).any(|w| w == raw)
                && !text.contains(&b64[..b64.len() - 4])
                && !text.contains(&b64url[..b64url.len() - 4]),
            "a token is readable in {}",
            path.display()
        );
    }
    assert!(!text.contains(USER), "the account name is sealed too");
}

async fn imap_login(port: u16, password: &str) -> (ImapClient, common::ImapResponse) {
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {USER} \"{password}\"")).await;
    (c, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_tokens_refresh_during_login_only() {
    let rig = Rig::start().await;
    let (access, refresh) = store_sealed(&rig, Duration::from_secs(2));
    let path = token_file(&rig);
    assert_sealed(&path, &[&access, &refresh]);
    let cfg = config(&rig);
    let proxy = TestProxy::start(&cfg).await;
    let port = proxy.addrs[0].port();

    // `status` knows only that a sealed record exists.
    let st = process::run_with_config(&cfg, &["status"]).await;
    assert!(st.success(), "{st:?}");
    assert!(
        st.stdout.contains("encrypted with client password"),
        "{}",
        st.stdout
    );
    let json = process::run_with_config(&cfg, &["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v[0]["encrypted_with_client_password"], true);
    assert_eq!(v[0]["needs_login"], false);

    let (mut c, r) = imap_login(port, &rig.password).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(c.select("INBOX").await, 2);
    c.logout().await;

    // The access token expires; the next login refreshes it with the password and
    // stores the new grant sealed again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = rig.auth.grants("refresh_token");
    let (mut c, r) = imap_login(port, &rig.password).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(c.select("INBOX").await, 2);
    c.logout().await;
    assert_eq!(rig.auth.grants("refresh_token"), before + 1);
    let rec = load_sealed(&rig);
    assert!(rec.last_refresh.is_some());
    let new_access = rec.access_token.expose_secret().to_string();
    assert_ne!(new_access, access);
    let new_refresh = rec
        .refresh_token
        .as_ref()
        .map(|t| t.expose_secret().to_string())
        .unwrap();
    assert_sealed(&path, &[&access, &refresh, &new_access, &new_refresh]);

    // A wrong password: the normal NO, no token request, the file unchanged.
    let bytes = std::fs::read(&path).unwrap();
    let requests = rig.auth.token_requests();
    let (_c, r) = imap_login(port, "not-the-password").await;
    assert_eq!(r.status(), "NO", "{r:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(rig.auth.token_requests(), requests);

    // App passwords cannot open the record: refused like a wrong password.
    let added = process::run_with_config(&cfg, &["app-password", "add", USER, "helpdesk"]).await;
    assert!(added.success(), "{added:?}");
    let (_c, r) = imap_login(port, added.stdout.trim()).await;
    assert_eq!(r.status(), "NO", "{r:?}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    proxy.stop().await;
}

/// `login` asks for the local password and refuses a wrong one before anything
/// else, leaving the stored record alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_command_checks_the_local_password() {
    let rig = Rig::start().await;
    store_sealed(&rig, HOUR);
    let path = token_file(&rig);
    let bytes = std::fs::read(&path).unwrap();
    let cfg = config(&rig);
    let out = process::run(
        process::command(&[
            "--config",
            cfg.to_str().unwrap(),
            "login",
            USER,
            "--no-browser",
            "--timeout",
            "5s",
        ]),
        b"wrong password\n",
    )
    .await;
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains("wrong local password"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong password\n"));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// The authorization-code login through a password-bound store (what `login` does
/// after checking the password) replaces the record with a sealed one that the proxy
/// then uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flow_seals_the_new_grant() {
    let rig = Rig::start().await;
    store_sealed(&rig, HOUR);
    let cfg = config(&rig);
    let account = Config::load(&cfg).unwrap().resolve_account(USER).unwrap();
    let store = TokenStore::open(&state(&rig))
        .unwrap()
        .with_password(USER, SecretString::from(rig.password.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = LoginOptions {
        open_browser: false,
        timeout: Duration::from_secs(20),
        redirect_port: 0,
        url_sink: UrlSink::Channel(tx),
        ..Default::default()
    };
    let task = tokio::spawn(async move {
        let http = client::http_client().unwrap();
        login_authorization_code(&account, &store, &http, opts).await
    });
    let url = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let resp = reqwest::get(url.as_str()).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let rec = task.await.unwrap().unwrap();
    let access = rec.access_token.expose_secret().to_string();
    assert_sealed(&token_file(&rig), &[&access]);
    assert_eq!(load_sealed(&rig).access_token.expose_secret(), access);

    let proxy = TestProxy::start(&cfg).await;
    let (mut c, r) = imap_login(proxy.addrs[0].port(), &rig.password).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(c.select("INBOX").await, 2);
    c.logout().await;
    proxy.stop().await;
}
