//! The admin listener over real HTTP: probes without auth, the API behind Basic /
//! Bearer, the page behind a login form and a session cookie, the metrics text.
//! Runs `admin::serve` in process on port 0 over a temp config and token store.

mod common;

use std::time::Duration;

use common::admin::{random_hash, token_record};
use common::proxy::{AccountSpec, write_config};
use oauth_mail_proxy::admin::{self, AdminState};
use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::metrics::LoginFailure;
use oauth_mail_proxy::oauth::{TokenManager, TokenStore};
use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

const GOOD: &str = "good@example.com";
const STALE: &str = "stale@example.com";

struct Admin {
    url: String,
    password: String,
    access_token: String,
    state: AdminState,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

/// A config with GOOD (valid tokens) and STALE (marked as needing a login), and the
/// admin listener serving it.
async fn start() -> Admin {
    let dir = tempfile::tempdir().unwrap();
    let hash = random_hash();
    let client_secret = oauth_mail_proxy::secret::random_token(12);
    let spec = |username| AccountSpec {
        username,
        password_hash: &hash,
        client_id: "client",
        client_secret: &client_secret,
        authorize_url: "http://127.0.0.1:9/authorize",
        token_url: "http://127.0.0.1:9/token",
        mechanism: "xoauth2",
        extra: "",
    };
    let path = write_config(dir.path(), &[], &[spec(GOOD), spec(STALE)]);
    let config = Config::load(&path).expect("test config is valid");
    let store = TokenStore::open(&config.proxy.state_dir).unwrap();
    let good = token_record(GOOD, None);
    let access_token = secrecy::ExposeSecret::expose_secret(&good.access_token).to_string();
    store.save(GOOD, &good).unwrap();
    let stale = token_record(STALE, Some("refresh token rejected: invalid_grant"));
    store.save(STALE, &stale).unwrap();
    let tokens = TokenManager::new(store, reqwest::Client::new(), config.proxy.refresh_margin);

    let server = common::admin::serve(config, tokens).await;
    Admin {
        url: server.url,
        password: server.password,
        access_token,
        state: server.state,
        http: common::admin::http_client(),
        shutdown: server.shutdown,
        task: server.task,
        _dir: dir,
    }
}

impl Admin {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url))
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let done = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "serve ends on shutdown: {done:?}"
        );
    }
}

/// The value of cookie `name` set by `res`, with its attributes.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<(String, String)> {
    res.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (kv, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=')?;
            (k == name).then(|| (val.to_string(), attrs.to_string()))
        })
}

/// The value of the hidden `csrf` field of a page.
fn csrf_field(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[start..].split('"').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_need_no_auth_and_readiness_follows_the_flag() {
    let a = start().await;
    let res = a.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap().trim(), "ok");
    let res = a.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    a.state.set_ready(true);
    let res = a.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = a.get("/nowhere").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_wants_the_admin_password_as_basic_or_bearer() {
    let a = start().await;
    for path in ["/metrics", "/api/accounts"] {
        let res = a.get(path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(res.headers().contains_key("www-authenticate"), "{path}");
        let res = a
            .get(path)
            .basic_auth("admin", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        let res = a.get(path).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        let res = a
            .get(path)
            .basic_auth("anyone", Some(&a.password))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let res = a.get(path).bearer_auth(&a.password).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }

    let res = a
        .get("/api/accounts")
        .bearer_auth(&a.password)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.text().await.unwrap();
    assert!(!body.contains(&a.access_token), "a token leaked: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = v.as_array().expect("an array");
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list[0]["account"], GOOD);
    assert_eq!(list[0]["access_token_valid"], true);
    assert_eq!(list[0]["needs_login"], false);
    assert_eq!(list[1]["account"], STALE);
    assert_eq!(list[1]["needs_login"], true);
    assert_eq!(
        list[1]["last_error"],
        "refresh token rejected: invalid_grant"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_sets_a_session_cookie_that_opens_the_overview() {
    let a = start().await;
    let res = a.get("/").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (login_cookie, _) = set_cookie(&res, admin::LOGIN_COOKIE).expect("login cookie");
    let html = res.text().await.unwrap();
    assert!(html.contains("action=\"/login\""), "{html}");
    assert!(!html.contains(GOOD), "accounts shown before login: {html}");
    let csrf = csrf_field(&html);
    assert_eq!(csrf, login_cookie, "double-submit token");
    let cookie_header = format!("{}={login_cookie}", admin::LOGIN_COOKIE);

    // Wrong password; right password with a forged or missing anti-CSRF token.
    let login = |pw: &str, csrf: &str, cookie: &str| {
        let req = a.post("/login").form(&[("password", pw), ("csrf", csrf)]);
        if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie)
        }
    };
    let res = login("wrong", &csrf, &cookie_header).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&res, admin::SESSION_COOKIE).is_none());
    let res = login(&a.password, "forged", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = login(&a.password, &csrf, "").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&res, admin::SESSION_COOKIE).is_none());

    let res = login(&a.password, &csrf, &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/");
    let (session, attrs) = set_cookie(&res, admin::SESSION_COOKIE).expect("session cookie");
    assert!(
        attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict"),
        "{attrs}"
    );
    let session = format!("{}={session}", admin::SESSION_COOKIE);

    let res = a.get("/").header("cookie", &session).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("<td>{GOOD}</td>")), "{html}");
    assert!(html.contains(&format!("<td>{STALE}</td>")), "{html}");
    let banner = html
        .split("id=\"needs-login\"")
        .nth(1)
        .and_then(|b| b.split("</div>").next())
        .expect("a needs-login banner");
    assert!(banner.contains(STALE) && !banner.contains(GOOD), "{banner}");
    assert!(
        html.contains("refresh token rejected: invalid_grant"),
        "{html}"
    );
    assert!(!html.contains(&a.access_token), "a token leaked");
    assert!(!html.contains("<script"), "no JavaScript");
    // The session also opens the read-only API.
    let res = a
        .get("/api/accounts")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Logout wants the page's anti-CSRF token.
    let page_csrf = csrf_field(&html);
    let logout = |csrf: &str| {
        a.post("/logout")
            .header("cookie", &session)
            .form(&[("csrf", csrf)])
    };
    let res = logout("forged").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = logout(&page_csrf).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = a.get("/").header("cookie", &session).send().await.unwrap();
    let html = res.text().await.unwrap();
    assert!(
        html.contains("action=\"/login\"") && !html.contains(GOOD),
        "{html}"
    );
    let res = a
        .get("/metrics")
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_are_bounded() {
    let a = start().await;
    let big = "x".repeat(admin::MAX_BODY + 1);
    let res = a
        .post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf=a&password={big}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    a.stop().await;
}

/// (name, labels, value) of each sample; panics on a line that is neither a comment
/// nor `name{labels} value`.
fn parse_metrics(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {l}"));
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
                None => (series, ""),
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{l}"
            );
            (name.to_string(), labels.to_string(), value)
        })
        .collect()
}

fn sample(samples: &[(String, String, f64)], name: &str, labels: &str) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l == labels)
        .unwrap_or_else(|| panic!("no {name}{{{labels}}} in {samples:?}"))
        .2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_text_parses_and_shows_the_counters() {
    let a = start().await;
    let m = a.state.metrics();
    for _ in 0..3 {
        m.login_ok();
    }
    m.login_failed(LoginFailure::BadCredentials);
    let imap = m.listener("imap 127.0.0.1:1143");
    let _open = imap.connection_opened();
    imap.add_bytes(5, 7);

    let res = a
        .get("/metrics")
        .bearer_auth(&a.password)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    let text = res.text().await.unwrap();
    let s = parse_metrics(&text);
    assert!(
        text.contains("# TYPE oauth_mail_proxy_logins_ok_total counter"),
        "{text}"
    );
    assert_eq!(sample(&s, "oauth_mail_proxy_logins_ok_total", ""), 3.0);
    assert_eq!(
        sample(
            &s,
            "oauth_mail_proxy_logins_failed_total",
            "reason=\"bad_credentials\""
        ),
        1.0
    );
    let l = "listener=\"imap 127.0.0.1:1143\"";
    assert_eq!(sample(&s, "oauth_mail_proxy_connections_open", l), 1.0);
    assert_eq!(sample(&s, "oauth_mail_proxy_connections_total", l), 1.0);
    let down = format!("{l},direction=\"upstream_to_client\"");
    assert_eq!(
        sample(&s, "oauth_mail_proxy_spliced_bytes_total", &down),
        7.0
    );
    let left = sample(
        &s,
        "oauth_mail_proxy_token_expiry_seconds",
        &format!("account=\"{GOOD}\""),
    );
    assert!(left > 3000.0 && left <= 3600.0, "{left}");
    let stale = format!("account=\"{STALE}\"");
    assert_eq!(
        sample(&s, "oauth_mail_proxy_account_needs_login", &stale),
        1.0
    );
    assert_eq!(
        sample(&s, "oauth_mail_proxy_accounts_needing_login", ""),
        1.0
    );
    a.stop().await;
}
