//! No secret reaches the output of `login`: the real binary runs `login --no-browser
//! --log trace` (authorization code + PKCE, loopback redirect, client secret
//! configured) against the test authorization server, whose token endpoint sits
//! behind a recording tee (`common::canary::HttpTee`). The callback's `code` (read
//! from the authorization server's redirect), the PKCE verifier, the client secret
//! and the tokens of the response (read from the tee), are then searched for in
//! everything the command printed and every page the "browser" got.

mod common;

use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::canary::{HttpTee, Secrets};
use common::process;
use common::proxy::{AccountSpec, write_config};
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::oauth::TokenStore;
use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use url::Url;

const USER: &str = "alice@example.com";
const WAIT: Duration = Duration::from_secs(30);

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_output_of_login_holds_no_secret() {
    common::install_crypto_provider();
    let auth = AuthServer::start(
        "127.0.0.1:0".parse().unwrap(),
        AuthServerConfig::generated(),
    )
    .await
    .unwrap();
    let tee = HttpTee::start(auth.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = auth.config().clone();
    let mut secrets = Secrets::default();
    secrets.add("client secret", &cfg.client_secret);
    secrets.add_payload("HTTP Basic credentials", secrets_basic(&cfg));
    let (authorize_url, token_url) = (auth.authorize_url(), tee.url_for(&auth.token_url()));
    let password = oauth_mail_proxy::secret::random_token(12);
    let hash = oauth_mail_proxy::accounts::hash_password(&password.clone().into());
    secrets.add("local password", &password);
    let account = AccountSpec {
        username: USER,
        password_hash: &hash,
        client_id: &cfg.client_id,
        client_secret: &cfg.client_secret,
        authorize_url: &authorize_url,
        token_url: &token_url,
        mechanism: "xoauth2",
        extra: "",
    };
    let config = write_config(dir.path(), &[], &[account]);

    let args = [
        "--config",
        config.to_str().unwrap(),
        "--log",
        "trace",
        "login",
        USER,
        "--no-browser",
        "--timeout",
        "30s",
    ];
    let mut child = process::command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn login");
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    tokio::time::timeout(WAIT, stdout.read_line(&mut first))
        .await
        .expect("no URL on stdout in time")
        .unwrap();
    let Ok(url) = Url::parse(first.trim_end()) else {
        let _ = child.kill().await;
        panic!("no URL: {first:?}\n{}", stderr.await.unwrap());
    };

    // The "browser": the authorization server redirects to the loopback listener
    // with the code; follow the redirect by hand to learn it.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(url.as_str()).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{resp:?}");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let callback = Url::parse(&location).unwrap();
    let code = param(&callback, "code").expect("a code in the redirect");
    secrets.add("authorization code", &code);
    let page = browser.get(location.as_str()).send().await.unwrap();
    let status = page.status();
    let page = page.text().await.unwrap();
    assert!(status.is_success(), "{status}: {page}");

    let exit = process::wait_exit(&mut child, WAIT)
        .await
        .expect("login did not exit in time");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    let stderr = stderr.await.unwrap();
    let output = format!("{first}{rest}\n{stderr}");
    assert!(exit.success(), "login failed:\n{output}");
    assert_eq!(auth.grants("authorization_code"), 1);

    // What went to the token endpoint and back: the same code, a PKCE verifier
    // matching the challenge in the URL, the client secret, the tokens.
    let fields = tee.plant(&mut secrets, &[USER], &[993, 143]);
    for f in ["code", "code_verifier", "grant_type", "redirect_uri"] {
        assert!(fields.iter().any(|x| x == f), "no {f} in {fields:?}");
    }
    assert!(
        secrets.contains(&code),
        "the code went to the token endpoint"
    );
    let (requests, _) = tee.bodies();
    let verifier = requests
        .iter()
        .flat_map(|b| {
            url::form_urlencoded::parse(b)
                .into_owned()
                .collect::<Vec<_>>()
        })
        .find(|(k, _)| k == "code_verifier")
        .map(|(_, v)| v)
        .unwrap();
    assert_eq!(param(&url, "code_challenge").unwrap(), s256(&verifier));
    let rec = TokenStore::open(&dir.path().join("state"))
        .unwrap()
        .load(USER)
        .unwrap()
        .expect("tokens stored");
    let at = rec.access_token.expose_secret();
    assert!(secrets.contains(at), "the tee saw the access token");
    let rt = rec.refresh_token.as_ref().unwrap().expose_secret();
    assert!(secrets.contains(rt), "the tee saw the refresh token");

    // The log is there, at trace level, dependencies included.
    for evidence in [" TRACE ", "hyper", "reqwest"] {
        assert!(output.contains(evidence), "no {evidence:?} in:\n{output}");
    }
    let ir = oauth_mail_proxy::proto::sasl::xoauth2_initial_response(USER, &rec.access_token);
    secrets.assert_search_works(at, ir.expose_secret());
    secrets.assert_search_works(&code, &secrets_basic(&cfg));
    secrets.assert_clean("the output of login --log trace", &output);
    secrets.assert_clean("the page the browser got", &page);
    auth.shutdown().await;
}

/// The Basic credentials planted above.
fn secrets_basic(cfg: &AuthServerConfig) -> String {
    STANDARD.encode(format!("{}:{}", cfg.client_id, cfg.client_secret))
}

/// The PKCE S256 challenge of `verifier`.
fn s256(verifier: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}
