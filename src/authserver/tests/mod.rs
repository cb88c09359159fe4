//! End-to-end tests of the authorization server over real HTTP (reqwest): the
//! harness and the successful flows here, rejections in [`errors`].

mod errors;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;

use super::{AuthServer, AuthServerConfig, s256_challenge};
use crate::secret::random_token;

const REDIRECT: &str = "http://127.0.0.1:9/callback";

struct Harness {
    server: AuthServer,
    http: reqwest::Client,
}

impl Harness {
    async fn new(cfg: AuthServerConfig) -> Self {
        let server = AuthServer::start("127.0.0.1:0".parse().unwrap(), cfg)
            .await
            .unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { server, http }
    }

    async fn default() -> Self {
        Self::new(AuthServerConfig::generated()).await
    }

    fn cfg(&self) -> &AuthServerConfig {
        self.server.config()
    }

    async fn authorize(&self, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .get(self.server.authorize_url())
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// Runs /authorize with PKCE for `verifier` and returns the query of the redirect.
    async fn code_for(&self, verifier: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let challenge = s256_challenge(verifier);
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", self.cfg().client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "st4te"),
            ("scope", "mail"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let resp = self.authorize(&params).await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = resp.headers()[LOCATION].to_str().unwrap();
        let url = url::Url::parse(location).unwrap();
        assert!(location.starts_with(REDIRECT), "{location}");
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let cfg = self.cfg();
        let resp = self
            .http
            .post(self.server.token_url())
            .basic_auth(&cfg.client_id, Some(&cfg.client_secret))
            .form(form)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ];
        self.token(&form).await
    }

    async fn refresh(&self, rt: &str) -> (StatusCode, Value) {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", rt)])
            .await
    }

    async fn introspect(&self, token: &str) -> Value {
        let cfg = self.cfg();
        let resp = self
            .http
            .post(self.server.introspect_url())
            .basic_auth(
                &cfg.introspect_client_id,
                Some(&cfg.introspect_client_secret),
            )
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

#[tokio::test]
async fn code_flow_with_pkce_and_introspection() {
    let h = Harness::default().await;
    let verifier = random_token(32);
    let q = h.code_for(&verifier, &[]).await;
    assert_eq!(param(&q, "state"), Some("st4te"));
    let code = param(&q, "code").unwrap();
    let (status, tok) = h.exchange(code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    assert_eq!(tok["scope"], "mail");
    assert!(tok["refresh_token"].is_string());
    let info = h.introspect(s(&tok, "access_token")).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice@example.com");
    assert_eq!(info["sub"], "alice@example.com");
    assert_eq!(info["scope"], "mail");
    assert!(info["exp"].as_u64().unwrap() > info["iat"].as_u64().unwrap());
    assert_eq!(h.server.grants("authorization_code"), 1);
    assert_eq!(h.server.token_requests(), 1);

    // login_hint chooses the user.
    let q = h
        .code_for(&verifier, &[("login_hint", "bob@example.org")])
        .await;
    let (_, tok) = h.exchange(param(&q, "code").unwrap(), &verifier).await;
    assert_eq!(
        h.introspect(s(&tok, "access_token")).await["username"],
        "bob@example.org"
    );
}

#[tokio::test]
async fn wrong_verifier_and_reused_code_are_invalid_grant() {
    let h = Harness::default().await;
    let verifier = random_token(32);
    let q = h.code_for(&verifier, &[]).await;
    let (status, err) = h
        .exchange(param(&q, "code").unwrap(), &random_token(32))
        .await;
    assert_eq!(
        (status, s(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );

    let q = h.code_for(&verifier, &[]).await;
    let code = param(&q, "code").unwrap();
    let (status, tok) = h.exchange(code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = h.exchange(code, &verifier).await;
    assert_eq!(
        (status, s(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    // The replay revoked what the code had produced.
    assert_eq!(h.introspect(s(&tok, "access_token")).await["active"], false);
    assert_eq!(
        h.refresh(s(&tok, "refresh_token")).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(h.server.grants("authorization_code"), 1);
    assert_eq!(h.server.token_requests(), 4);
}

#[tokio::test]
async fn refresh_rotates_and_revoke_invalidates() {
    let h = Harness::default().await;
    let (access, rt) = h.server.mint_tokens("carol@example.com");
    let (status, tok) = h.refresh(&rt).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    let rt2 = s(&tok, "refresh_token").to_owned();
    assert_ne!(rt2, rt);
    let (status, err) = h.refresh(&rt).await;
    assert_eq!(
        (status, s(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    assert_eq!(h.server.grants("refresh_token"), 1);

    let access2 = s(&tok, "access_token").to_owned();
    assert_eq!(h.introspect(&access).await["active"], true);
    assert_eq!(
        h.introspect(&access2).await["username"],
        "carol@example.com"
    );
    h.server.revoke_user("carol@example.com");
    assert_eq!(h.introspect(&access).await["active"], false);
    assert_eq!(h.introspect(&access2).await["active"], false);
    assert_eq!(h.refresh(&rt2).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_token() {
    let h = Harness::new(AuthServerConfig {
        rotate_refresh_tokens: false,
        ..AuthServerConfig::generated()
    })
    .await;
    let (_, rt) = h.server.mint_tokens("alice@example.com");
    for _ in 0..2 {
        let (status, tok) = h.refresh(&rt).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(tok["refresh_token"], rt.as_str());
    }
    assert_eq!(h.server.grants("refresh_token"), 2);
}

#[tokio::test]
async fn access_tokens_expire_after_the_lifetime() {
    let h = Harness::default().await;
    h.server.set_token_lifetime(Duration::from_millis(300));
    let (access, rt) = h.server.mint_tokens("alice@example.com");
    assert_eq!(h.introspect(&access).await["active"], true);
    let (_, tok) = h.refresh(&rt).await;
    assert_eq!(tok["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        h.introspect(&access).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(h.introspect(s(&tok, "access_token")).await["active"], false);
}
