//! The admin listener's account actions over real HTTP, against the project's test
//! authorization server and an XOAUTH2-only IMAP server: login through the JSON API
//! and `/oauth/callback` (state single use), device code login polled in the
//! background, verify, logout, export / import, and the page forms' CSRF checks.

mod common;

use std::time::Duration;

use common::admin::{imap_listener, random_hash, token_record};
use common::proxy::{AccountSpec, write_config};
use oauth_mail_proxy::admin;
use oauth_mail_proxy::authserver::AuthServer;
use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::oauth::{TokenManager, TokenStore};
use oauth_mail_proxy::testkit::mini_imap::MiniImap;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use url::Url;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

struct Fixture {
    url: String,
    password: String,
    store: TokenStore,
    srv: AuthServer,
    imap: MiniImap,
    http: reqwest::Client,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

async fn start() -> Fixture {
    let (srv, imap) = common::admin::upstreams().await;
    srv.set_device_interval(Duration::from_millis(200));
    let dir = tempfile::tempdir().unwrap();
    let hash = random_hash();
    let (authorize, token) = (srv.authorize_url(), srv.token_url());
    let device = format!(
        "flow = \"device_code\"\ndevice_authorization_url = \"{}\"\n",
        srv.device_url()
    );
    let cfg = srv.config().clone();
    let spec = |username, extra| AccountSpec {
        username,
        password_hash: &hash,
        client_id: &cfg.client_id,
        client_secret: &cfg.client_secret,
        authorize_url: &authorize,
        token_url: &token,
        mechanism: "xoauth2",
        extra,
    };
    let path = write_config(
        dir.path(),
        &[imap_listener(imap.addr())],
        &[spec(ALICE, ""), spec(BOB, &device)],
    );
    let config = Config::load(&path).expect("test config is valid");
    let store = TokenStore::open(&config.proxy.state_dir).unwrap();
    let tokens = TokenManager::new(
        store.clone(),
        oauth_mail_proxy::oauth::client::http_client().unwrap(),
        config.proxy.refresh_margin,
    );
    let server = common::admin::serve(config, tokens).await;
    Fixture {
        url: server.url,
        password: server.password,
        store,
        srv,
        imap,
        http: common::admin::http_client(),
        shutdown: server.shutdown,
        _dir: dir,
    }
}

impl Fixture {
    async fn api(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.password)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// Logs in on the page's form; returns the `Cookie` header value of the session.
    async fn page_session(&self) -> String {
        let res = self.get(&format!("{}/", self.url)).await;
        let login_cookie = cookie(&res, admin::LOGIN_COOKIE);
        let csrf = csrf_field(&res.text().await.unwrap());
        let res = self
            .http
            .post(format!("{}/login", self.url))
            .header("cookie", format!("{}={login_cookie}", admin::LOGIN_COOKIE))
            .form(&[
                ("csrf", csrf.as_str()),
                ("password", self.password.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        format!(
            "{}={}",
            admin::SESSION_COOKIE,
            cookie(&res, admin::SESSION_COOKIE)
        )
    }

    /// The overview as the page session sees it.
    async fn page(&self, session: &str) -> String {
        let res = self
            .http
            .get(format!("{}/", self.url))
            .header("cookie", session)
            .send()
            .await
            .unwrap();
        res.text().await.unwrap()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.srv.shutdown().await;
        self.imap.shutdown().await;
    }
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn seg(name: &str) -> String {
    name.replace('@', "%40")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_the_callback_then_verify_and_logout() {
    let f = start().await;
    // No credentials: refused.
    let res = f
        .http
        .post(format!("{}/api/accounts/{}/login", f.url, seg(ALICE)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let (status, v) = f.api(&format!("/api/accounts/{}/login", seg(ALICE))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let auth = Url::parse(v["authorization_url"].as_str().unwrap()).unwrap();
    assert!(auth.as_str().starts_with(&f.srv.authorize_url()), "{auth}");
    assert_eq!(
        param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let redirect = param(&auth, "redirect_uri").unwrap();
    assert_eq!(redirect, format!("{}/oauth/callback", f.url));

    // A forged state is refused, and does not use up the real one.
    let forged = format!(
        "{redirect}?code=x&state={}",
        oauth_mail_proxy::secret::random_token(32)
    );
    let res = f.get(&forged).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("unknown or expired"));

    // The authorization server redirects back with the code.
    let res = f.get(auth.as_str()).await;
    assert!(res.status().is_redirection(), "{}", res.status());
    let back = res.headers()["location"].to_str().unwrap().to_string();
    assert!(back.starts_with(&redirect), "{back}");
    let res = f.get(&back).await;
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("logged in; tokens saved"), "{page}");
    assert!(!page.contains(&param(&Url::parse(&back).unwrap(), "code").unwrap()));
    let rec = f.store.load(ALICE).unwrap().expect("tokens saved");
    assert!(rec.needs_login.is_none() && rec.refresh_token.is_some());
    assert_eq!(f.srv.grants("authorization_code"), 1);

    // Single use: the same redirect again is refused and changes nothing.
    let res = f.get(&back).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(f.srv.grants("authorization_code"), 1);

    let (status, v) = f.api(&format!("/api/accounts/{}/verify", seg(ALICE))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], json!(true), "{v}");
    assert_eq!(v["listeners"][0]["ok"], json!(true), "{v}");
    assert!(
        v["listeners"][0]["message"]
            .as_str()
            .unwrap()
            .contains("0 messages"),
        "{v}"
    );

    let (status, v) = f.api(&format!("/api/accounts/{}/logout", seg(ALICE))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(f.store.load(ALICE).unwrap().is_none(), "tokens deleted");

    let (status, v) = f.api(&format!("/api/accounts/{}/verify", seg(ALICE))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], json!(false), "{v}");
    assert_eq!(v["token"]["kind"], json!("not_logged_in"), "{v}");

    let (status, _) = f.api("/api/accounts/nobody%40example.com/login").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_login_is_polled_in_the_background() {
    let f = start().await;
    let (status, v) = f.api(&format!("/api/accounts/{}/login", seg(BOB))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["flow"], json!("device_code"));
    let code = v["user_code"].as_str().unwrap().to_string();
    assert!(
        v["verification_uri"].as_str().unwrap().starts_with("http"),
        "{v}"
    );
    assert!(f.store.load(BOB).unwrap().is_none());
    // The overview shows the code to enter and reloads itself while waiting.
    let session = f.page_session().await;
    let page = f.page(&session).await;
    assert!(page.contains("Waiting for approval"), "{page}");
    assert!(
        page.contains(&format!("<code id=\"user-code\">{code}</code>")),
        "{page}"
    );
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(f.srv.approve_device(&code, BOB));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while f.store.load(BOB).unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not saved after approval"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(f.srv.grants("device_code"), 1);
    let mut page = f.page(&session).await;
    while !page.contains("class=\"ok\" data-account=\"bob@example.com\"") {
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = f.page(&session).await;
    }
    assert!(
        page.contains("class=\"ok\" data-account=\"bob@example.com\""),
        "{page}"
    );
    assert!(!page.contains("http-equiv=\"refresh\""), "{page}");
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_through_the_api() {
    let f = start().await;
    let rec = token_record(ALICE, None);
    f.store.save(ALICE, &rec).unwrap();
    let export = |pass: &str| {
        f.http
            .post(format!("{}/api/export", f.url))
            .bearer_auth(&f.password)
            .json(&json!({ "passphrase": pass }))
            .send()
    };
    assert_eq!(
        export("short").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let pass = oauth_mail_proxy::secret::random_token(16);
    let res = export(&pass).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let file = res.bytes().await.unwrap();
    let token = secrecy::ExposeSecret::expose_secret(&rec.access_token).to_string();
    assert!(
        !String::from_utf8_lossy(&file).contains(&token),
        "export not sealed"
    );

    f.store.delete(ALICE).unwrap();
    let import = |pass: &str| {
        f.http
            .post(format!("{}/api/import", f.url))
            .bearer_auth(&f.password)
            .header("x-passphrase", pass)
            .body(file.clone())
            .send()
    };
    assert_eq!(
        import("wrong passphrase").await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    assert!(f.store.load(ALICE).unwrap().is_none());
    let res = import(&pass).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["ok"], json!(true), "{v}");
    let back = f.store.load(ALICE).unwrap().expect("imported");
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&back.access_token),
        token
    );
    f.stop().await;
}

/// The value of the hidden `csrf` field of a page.
fn csrf_field(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

fn cookie(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()?
                .strip_prefix(&format!("{name}="))
                .map(String::from)
        })
        .expect("cookie set")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_buttons_need_the_session_and_its_csrf_token() {
    let f = start().await;
    let session = f.page_session().await;
    let page = f.page(&session).await;
    assert!(
        page.contains("Verify connection") && page.contains("id=\"export\""),
        "{page}"
    );
    let csrf = csrf_field(&page);
    let verify = format!("{}/accounts/{}/verify", f.url, seg(ALICE));

    // Without the session: back to the login form, nothing done.
    let res = f
        .http
        .post(&verify)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // With a wrong token: refused.
    let res = f
        .http
        .post(&verify)
        .header("cookie", &session)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page = f.page(&session).await;
    assert!(!page.contains("data-action=\"verify\""), "{page}");

    // With both: done, and the result is on the overview.
    let res = f
        .http
        .post(&verify)
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = f.page(&session).await;
    assert!(page.contains("data-action=\"verify\""), "{page}");
    assert!(
        page.contains("class=\"fail\""),
        "no token yet, so verify fails: {page}"
    );

    // Export downloads the sealed file; importing it (multipart upload) reports.
    let pass = oauth_mail_proxy::secret::random_token(12);
    let res = f
        .http
        .post(format!("{}/export", f.url))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("passphrase", pass.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let file = res.bytes().await.unwrap();
    let mut body = Vec::new();
    for (name, value) in [
        ("csrf", csrf.as_bytes()),
        ("passphrase", pass.as_bytes()),
        ("file", &file[..]),
    ] {
        body.extend_from_slice(format!("--BOUNDARYxyz\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x\"\r\n\r\n").as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--BOUNDARYxyz--\r\n");
    let res = f
        .http
        .post(format!("{}/import", f.url))
        .header("cookie", &session)
        .header("content-type", "multipart/form-data; boundary=BOUNDARYxyz")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = f.page(&session).await;
    assert!(
        page.contains("class=\"ok\" data-account=\"(import)\""),
        "{page}"
    );

    // Re-authenticate answers with a page moving on to the authorization server.
    let res = f
        .http
        .post(format!("{}/accounts/{}/login", f.url, seg(ALICE)))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(page.contains("http-equiv=\"refresh\""), "{page}");
    assert!(page.contains(&f.srv.authorize_url()), "{page}");
    f.stop().await;
}
