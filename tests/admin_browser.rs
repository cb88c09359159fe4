//! The admin page in a real headless Chromium, driven through WebDriver
//! (`chromedriver`, raw JSON over HTTP): a wrong admin password is refused; the
//! overview shows a needs-login banner; Re-authenticate runs the authorization code
//! flow against the test authorization server and comes back to the admin
//! listener's `/oauth/callback`; the banner is gone; Verify connection logs in to an
//! XOAUTH2-only IMAP server and shows ok; a screenshot of the overview is saved to
//! `target/test-artifacts/admin-overview.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/setup-test-deps.sh`
//! installs them). Without them the test FAILS, saying so.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use common::admin::{imap_listener, random_hash, token_record};
use common::proxy::{AccountSpec, write_config};
use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::oauth::{TokenManager, TokenRecord, TokenStore};
use serde_json::{Value, json};

const USER: &str = "alice@example.com";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMEDRIVER: &str = "chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A WebDriver session on a chromedriver child process (killed on drop).
struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

fn have(cmd: &str) -> bool {
    std::process::Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Browser {
    async fn start() -> Browser {
        if !have(CHROMEDRIVER) || !std::path::Path::new(CHROMIUM).exists() {
            // Try to install them (as root, or with sudo -n); then require them.
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-test-deps.sh");
            let _ = std::process::Command::new("bash")
                .arg(script)
                .stdin(Stdio::null())
                .status();
        }
        assert!(
            have(CHROMEDRIVER) && std::path::Path::new(CHROMIUM).exists(),
            "this test needs Debian's `chromium` and `chromium-driver` ({CHROMIUM}, `{CHROMEDRIVER}` on PATH): \
             run scripts/setup-test-deps.sh as root (or apt-get install -y chromium chromium-driver)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == json!(true)
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not become ready on port {port} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let id = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start through chromedriver: {res}"));
        Browser {
            http,
            base: format!("{base}/session/{id}"),
            _driver: driver,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    async fn url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn source(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/source", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT].as_str().map(String::from)
    }

    async fn element(&self, css: &str) -> String {
        self.find(css)
            .await
            .unwrap_or_else(|| panic!("no element `{css}` on the page"))
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Waits up to 30 s for an element matching `css`.
    async fn wait_for(&self, css: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.find(css).await.is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{css}` did not appear; at {}:\n{}",
                self.url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .unwrap()
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reauthenticate_and_verify_in_a_real_browser() {
    let (srv, imap) = common::admin::upstreams().await;

    let dir = tempfile::tempdir().unwrap();
    let hash = random_hash();
    let (authorize, token) = (srv.authorize_url(), srv.token_url());
    let path = write_config(
        dir.path(),
        &[imap_listener(imap.addr())],
        &[AccountSpec {
            username: USER,
            password_hash: &hash,
            client_id: &srv.config().client_id,
            client_secret: &srv.config().client_secret,
            authorize_url: &authorize,
            token_url: &token,
            mechanism: "xoauth2",
            extra: "",
        }],
    );
    let config = Config::load(&path).expect("test config is valid");
    let store = TokenStore::open(&config.proxy.state_dir).unwrap();
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    let stale = TokenRecord {
        refresh_token: None,
        expires_at: Some(now - 60),
        obtained_at: now - 7200,
        ..token_record(USER, Some("refresh token rejected: invalid_grant"))
    };
    store.save(USER, &stale).unwrap();
    let tokens = TokenManager::new(
        store.clone(),
        oauth_mail_proxy::oauth::client::http_client().unwrap(),
        config.proxy.refresh_margin,
    );
    let server = common::admin::serve(config, tokens).await;
    let (admin_url, password) = (server.url.clone(), server.password.clone());

    let b = Browser::start().await;

    // A wrong password is refused.
    b.goto(&format!("{admin_url}/")).await;
    b.wait_for("input[name=password]").await;
    b.type_into("input[name=password]", "not the password")
        .await;
    b.click("button[type=submit]").await;
    b.wait_for("#error").await;
    let page = b.source().await;
    assert!(page.contains("Wrong password"), "{page}");
    assert!(
        b.find("#accounts").await.is_none(),
        "overview shown: {page}"
    );

    // The right one: the overview, with the banner.
    b.type_into("input[name=password]", &password).await;
    b.click("button[type=submit]").await;
    b.wait_for("#accounts").await;
    let page = b.source().await;
    assert!(page.contains("id=\"needs-login\""), "no banner: {page}");
    assert!(page.contains(USER), "{page}");

    // Re-authenticate: to the authorization server and back to /oauth/callback.
    b.click("#needs-login button.login").await;
    b.wait_for("#result").await;
    let page = b.source().await;
    assert!(
        b.url()
            .await
            .starts_with(&format!("{admin_url}/oauth/callback?"))
    );
    assert!(page.contains("logged in; tokens saved"), "{page}");
    let params = srv.authorize_requests();
    let redirect = params
        .last()
        .and_then(|p| p.iter().find(|(k, _)| k == "redirect_uri"))
        .map(|(_, v)| v.clone());
    assert_eq!(
        redirect.as_deref(),
        Some(format!("{admin_url}/oauth/callback").as_str())
    );
    // On to the overview: the banner is gone.
    b.wait_for("li.ok[data-action=login]").await;
    let page = b.source().await;
    assert!(
        !page.contains("id=\"needs-login\""),
        "banner still there: {page}"
    );
    assert_eq!(srv.grants("authorization_code"), 1);
    let saved = store.load(USER).unwrap().unwrap();
    assert!(saved.needs_login.is_none() && saved.refresh_token.is_some());

    // Verify connection: a real XOAUTH2 login upstream.
    let form = format!(
        "form[action=\"/accounts/{}/verify\"] button",
        USER.replace('@', "%40")
    );
    b.click(&form).await;
    b.wait_for("li[data-action=verify]").await;
    let page = b.source().await;
    assert!(
        b.find("li.ok[data-action=verify]").await.is_some(),
        "verify failed: {page}"
    );
    assert!(page.contains("result: PASS"), "{page}");
    assert!(imap.logins() >= 1);

    // The screenshot, as a test artefact.
    let png = b.screenshot().await;
    assert!(
        png.len() > 8 && png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG"
    );
    let out: PathBuf = [env!("CARGO_MANIFEST_DIR"), "target", "test-artifacts"]
        .iter()
        .collect();
    std::fs::create_dir_all(&out).unwrap();
    let file = out.join("admin-overview.png");
    std::fs::write(&file, &png).unwrap();
    assert!(std::fs::metadata(&file).unwrap().len() > 0);

    b.quit().await;
    let _ = server.stop().await;
    srv.shutdown().await;
}
