//! POP3 end to end: Python's poplib logs in to the proxy with USER/PASS or AUTH PLAIN;
//! the proxy logs in to Dovecot's POP3 with XOAUTH2; every message listed and
//! retrieved equals the direct retrieval.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::proxy::{CountingForwarder, python_pop3};
use common::rig::{HOUR, Rig, USER};
use oauth_mail_proxy::oauth::TokenStore;

async fn direct_retrieval(rig: &Rig) -> String {
    let (access, _) = rig.auth.mint_tokens(USER);
    let port = rig.dovecot.pop3s_port.to_string();
    let ca = rig.dovecot.ca_path().display().to_string();
    let args = [
        "--port", &port, "--user", USER, "--tls", "implicit", "--cafile", &ca, "--auth", "xoauth2",
    ];
    let (code, out) = python_pop3(&args, &access).await;
    assert_eq!(code, 0, "direct retrieval failed: {out}");
    assert!(out.contains("\"count\": 2"), "{out}");
    out
}

async fn pop3_through(
    rig: &Rig,
    port: u16,
    tls: &str,
    auth: &str,
    password: &str,
) -> (i32, String) {
    let port = port.to_string();
    let ca = rig.local_ca();
    let mut args = vec![
        "--port", &port, "--user", USER, "--tls", tls, "--auth", auth,
    ];
    if tls != "none" {
        args.extend(["--cafile", &ca]);
    }
    python_pop3(&args, password).await
}

/// Every local TLS mode × both upstream TLS modes × USER/PASS and AUTH PLAIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieval_through_proxy_equals_direct_retrieval() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let mut listeners = Vec::new();
    for tls in ["none", "starttls", "implicit"] {
        for upstream_tls in ["implicit", "starttls"] {
            listeners.push(rig.listener("pop3", tls, upstream_tls));
        }
    }
    let proxy = rig.proxy(&listeners, "xoauth2").await;
    let direct = direct_retrieval(&rig).await;
    for (i, l) in listeners.iter().enumerate() {
        for auth in ["user", "plain"] {
            let (code, out) =
                pop3_through(&rig, proxy.addrs[i].port(), l.tls, auth, &rig.password).await;
            let what = format!("tls={} upstream_tls={} auth={auth}", l.tls, l.upstream_tls);
            assert_eq!(code, 0, "{what}: {out}");
            assert_eq!(out, direct, "{what}");
        }
    }
    proxy.stop().await;
}

/// OAUTHBEARER upstream works the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_upstream() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let proxy = rig
        .proxy(&[rig.listener("pop3", "none", "starttls")], "oauthbearer")
        .await;
    let direct = direct_retrieval(&rig).await;
    let (code, out) =
        pop3_through(&rig, proxy.addrs[0].port(), "none", "user", &rig.password).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, direct);
    proxy.stop().await;
}

/// Wrong password and unknown user get `-ERR [AUTH]` and never reach upstream; a
/// revoked grant gets a message asking for re-authorisation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_get_the_right_reply() {
    let rig = Rig::start().await;
    rig.store_tokens(Duration::from_secs(1));
    let fwd =
        CountingForwarder::start(SocketAddr::from(([127, 0, 0, 1], rig.dovecot.pop3s_port))).await;
    let mut l = rig.listener("pop3", "none", "implicit");
    l.upstream = fwd.addr;
    let proxy = rig.proxy(&[l], "xoauth2").await;
    let port = proxy.addrs[0].port();
    let (code, out) = pop3_through(&rig, port, "none", "user", "wrong-password").await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("-ERR [AUTH]"), "{out}");
    let (code, out) = pop3_through(&rig, port, "none", "plain", "wrong-password").await;
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        fwd.count(),
        0,
        "a failed local login opened an upstream connection"
    );

    // Expired token: refreshed at login.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, out) = pop3_through(&rig, port, "none", "user", &rig.password).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(rig.auth.grants("refresh_token"), 1);

    // Revoked grant: the client is told to re-authorise, and the account is marked.
    rig.auth.revoke_user(USER);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, out) = pop3_through(&rig, port, "none", "user", &rig.password).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("-ERR [AUTH]") && out.contains("oauth-mail-proxy login"),
        "{out}"
    );
    let store = TokenStore::open(&rig.dir.path().join("state")).unwrap();
    assert!(store.load(USER).unwrap().unwrap().needs_login.is_some());
    proxy.stop().await;
}

/// The first upstream refuses connections: the proxy uses the alternate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_alternate_upstream() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut l = rig.listener("pop3", "none", "implicit");
    l.alternate_first = Some(dead);
    let proxy = rig.proxy(&[l], "xoauth2").await;
    let direct = direct_retrieval(&rig).await;
    let (code, out) =
        pop3_through(&rig, proxy.addrs[0].port(), "none", "user", &rig.password).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, direct);
    proxy.stop().await;
}
