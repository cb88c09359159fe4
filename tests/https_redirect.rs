//! `redirect_uri = "https://localhost:PORT/path"`: the loopback listener of the
//! authorization-code login speaks TLS with the local certificate; a browser that
//! trusts it follows the redirect and the login completes (then an IMAP login through
//! the proxy uses the new tokens).

mod common;

use std::time::Duration;

use common::ImapClient;
use common::process;
use common::proxy::{AccountSpec, TestProxy, write_config};
use common::rig::{Rig, USER};
use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::oauth::{LoginOptions, TokenStore, UrlSink, client, flows};
use secrecy::ExposeSecret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_loopback_redirect_completes_the_login() {
    let rig = Rig::start().await;
    let port = process::free_port();
    let extra: &'static str = Box::leak(
        format!("redirect_uri = \"https://localhost:{port}/callback\"\n").into_boxed_str(),
    );
    let cfg = write_config(
        rig.dir.path(),
        &[rig.listener("imap", "none", "implicit")],
        &[AccountSpec {
            extra,
            ..rig.account("xoauth2")
        }],
    );
    let config = Config::load(&cfg).unwrap();
    let account = config.resolve_account(USER).unwrap();
    // No listener has a certificate: the generated local one serves the redirect.
    let tls = flows::redirect_tls(&config, &account).unwrap();
    assert!(tls.is_some());
    let ca = std::fs::read(rig.local_ca()).unwrap();

    let store = TokenStore::open(&config.proxy.state_dir).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = LoginOptions {
        open_browser: false,
        timeout: Duration::from_secs(20),
        redirect_tls: tls,
        url_sink: UrlSink::Channel(tx),
        ..Default::default()
    };
    let (acc, st) = (account.clone(), store.clone());
    let task = tokio::spawn(async move {
        let http = client::http_client().unwrap();
        flows::login_authorization_code(&acc, &st, &http, opts).await
    });
    let url = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let redirect = url
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        redirect.as_deref(),
        Some(format!("https://localhost:{port}/callback").as_str())
    );

    // A browser that does not trust the certificate gets nowhere; the login waits on.
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(untrusting.get(url.as_str()).send().await.is_err());
    assert!(!task.is_finished());

    let browser = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let resp = browser.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.url().scheme(), "https");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Authorization received")
    );
    let rec = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let stored = store.load(USER).unwrap().unwrap();
    assert_eq!(
        stored.access_token.expose_secret(),
        rec.access_token.expose_secret()
    );

    let proxy = TestProxy::start(&cfg).await;
    let mut c = ImapClient::connect(proxy.addrs[0].port()).await;
    let r = c
        .command(&format!("LOGIN {USER} \"{}\"", rig.password))
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(c.select("INBOX").await, 2);
    c.logout().await;
    proxy.stop().await;
}
