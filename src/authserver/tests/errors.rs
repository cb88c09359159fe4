//! Rejections: client authentication, malformed requests, bad authorization
//! requests, introspection access, shutdown.

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::Value;

use super::{Harness, REDIRECT, param, s};
use crate::authserver::s256_challenge;
use crate::secret::random_token;

#[tokio::test]
async fn client_authentication_and_request_errors() {
    let h = Harness::default().await;
    let (_, rt) = h.server.mint_tokens("alice@example.com");
    let cfg = h.cfg().clone();
    let url = h.server.token_url();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];

    // Credentials in the body.
    let body = [
        &form[..],
        &[
            ("client_id", &cfg.client_id),
            ("client_secret", &cfg.client_secret),
        ],
    ]
    .concat();
    let resp = h.http.post(&url).form(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Wrong secret: 401 invalid_client with a Basic challenge.
    let resp = h
        .http
        .post(&url)
        .basic_auth(&cfg.client_id, Some("nope"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(WWW_AUTHENTICATE));
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    // No credentials at all.
    let resp = h.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // Both methods at once.
    let resp = h
        .http
        .post(&url)
        .basic_auth(&cfg.client_id, Some(&cfg.client_secret))
        .form(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );

    let (status, err) = h.token(&[("grant_type", "password")]).await;
    assert_eq!(
        (status, s(&err, "error")),
        (StatusCode::BAD_REQUEST, "unsupported_grant_type")
    );
    let (status, err) = h.token(&[("code", "x")]).await;
    assert_eq!(
        (status, s(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let (status, err) = h
        .token(&[("grant_type", "authorization_code"), ("code", "x")])
        .await;
    assert_eq!(
        (status, s(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );

    // client_credentials: no refresh token.
    let (status, tok) = h.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(tok.get("refresh_token").is_none());
    assert_eq!(
        h.introspect(s(&tok, "access_token")).await["username"],
        cfg.default_user.as_str()
    );

    assert_eq!(h.server.token_requests(), 8);
    assert_eq!(h.server.grants("refresh_token"), 1);
    assert_eq!(h.server.grants("client_credentials"), 1);
}

fn base(cid: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("response_type", "code"),
        ("client_id", cid),
        ("redirect_uri", REDIRECT),
        ("state", "xyz"),
    ]
}

#[tokio::test]
async fn authorize_rejects_bad_requests_and_can_deny() {
    let h = Harness::default().await;
    let challenge = s256_challenge(&random_token(32));
    let cid = h.cfg().client_id.clone();
    let cid = cid.as_str();

    let mut p = base("unknown");
    p.extend([
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    assert_eq!(h.authorize(&p).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        h.authorize(&base(cid)).await.status(),
        StatusCode::BAD_REQUEST,
        "no PKCE"
    );
    let mut p = base(cid);
    p.extend([
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "plain"),
    ]);
    assert_eq!(
        h.authorize(&p).await.status(),
        StatusCode::BAD_REQUEST,
        "plain PKCE"
    );

    h.server.set_deny(true);
    let q = h.code_for(&random_token(32), &[]).await;
    assert_eq!(param(&q, "error"), Some("access_denied"));
    assert_eq!(param(&q, "state"), Some("st4te"));
    assert_eq!(param(&q, "code"), None);
    h.server.set_deny(false);
    assert!(param(&h.code_for(&random_token(32), &[]).await, "code").is_some());
}

#[tokio::test]
async fn introspection_variants_and_auth() {
    let h = Harness::default().await;
    let cfg = h.cfg().clone();
    let (access, _) = h.server.mint_tokens("alice@example.com");
    let url = h.server.introspect_url();

    let v: Value = h
        .http
        .get(&url)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["username"], "alice@example.com");
    let v: Value = h
        .http
        .get(&url)
        .query(&[("token", &access)])
        .basic_auth(
            &cfg.introspect_client_id,
            Some(&cfg.introspect_client_secret),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(
        h.introspect("not-a-token").await,
        serde_json::json!({"active": false})
    );

    // Without, or with the wrong, client credentials: 401.
    let resp = h
        .http
        .post(&url)
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = h
        .http
        .post(&url)
        .basic_auth(&cfg.client_id, Some(&cfg.client_secret))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = h
        .http
        .get(&url)
        .query(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn shutdown_stops_listening_despite_keep_alive_connections() {
    let h = Harness::default().await;
    let addr = h.server.addr();
    assert!(h.server.token_url().starts_with("http://127.0.0.1:"));
    // The client's pool keeps this connection open and idle.
    let (access, _) = h.server.mint_tokens("alice@example.com");
    assert_eq!(h.introspect(&access).await["active"], true);
    let started = std::time::Instant::now();
    h.server.shutdown().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
