//! IMAP end to end: a real client (Python's imaplib, or the test client) logs in to
//! the proxy with a local password; the proxy logs in to a real Dovecot that accepts
//! only XOAUTH2/OAUTHBEARER (checked by introspection at the test authorization
//! server); what the client fetches equals the same fetch made directly.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::ImapClient;
use common::proxy::{CountingForwarder, ListenerSpec, python_imap};
use oauth_mail_proxy::oauth::TokenStore;
use secrecy::SecretString;

use common::rig::{HOUR, Rig, USER};

/// A fetch made directly against Dovecot with XOAUTH2.
async fn direct_fetch(rig: &Rig) -> String {
    let (access, _) = rig.auth.mint_tokens(USER);
    let port = rig.dovecot.imaps_port.to_string();
    let ca = rig.dovecot.ca_path().display().to_string();
    let (code, out) = python_imap(
        &[
            "--port", &port, "--user", USER, "--tls", "implicit", "--cafile", &ca, "--auth",
            "xoauth2",
        ],
        &access,
    )
    .await;
    assert_eq!(code, 0, "direct fetch failed: {out}");
    out
}

fn spec(
    tls: &'static str,
    upstream: SocketAddr,
    upstream_tls: &'static str,
    rig: &Rig,
) -> ListenerSpec {
    ListenerSpec {
        protocol: "imap",
        alternate_first: None,
        tls,
        upstream,
        upstream_tls,
        upstream_ca: (upstream_tls != "none").then(|| rig.dovecot.ca_path().to_path_buf()),
    }
}

/// Every local TLS mode × both upstream TLS modes × LOGIN and AUTHENTICATE PLAIN:
/// imaplib through the proxy sees exactly what it sees directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_through_proxy_equals_direct_fetch() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let mut listeners = Vec::new();
    for tls in ["none", "starttls", "implicit"] {
        listeners.push(spec(tls, rig.imaps(), "implicit", &rig));
        listeners.push(spec(tls, rig.imap(), "starttls", &rig));
    }
    let proxy = rig.proxy(&listeners, "xoauth2").await;
    let direct = direct_fetch(&rig).await;
    assert!(direct.contains("\"exists\": 2"), "direct fetch: {direct}");
    // The local TLS certificate is generated into state_dir: trust it as the client would.
    let local_ca = rig
        .dir
        .path()
        .join("state/certs/local-cert.pem")
        .display()
        .to_string();
    for (i, l) in listeners.iter().enumerate() {
        let port = proxy.addrs[i].port().to_string();
        for auth in ["login", "plain"] {
            let mut args = vec![
                "--port", &port, "--user", USER, "--tls", l.tls, "--auth", auth,
            ];
            if l.tls != "none" {
                args.extend(["--cafile", &local_ca]);
            }
            let (code, out) = python_imap(&args, &rig.password).await;
            assert_eq!(
                code, 0,
                "tls={} upstream_tls={} auth={auth}: {out}",
                l.tls, l.upstream_tls
            );
            assert_eq!(
                out, direct,
                "tls={} upstream_tls={} auth={auth}",
                l.tls, l.upstream_tls
            );
        }
    }
    proxy.stop().await;
}

/// OAUTHBEARER upstream, pipelined commands after LOGIN, and the capabilities in
/// the final OK come from the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauthbearer_and_pipelining() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let proxy = rig
        .proxy(
            &[spec("none", rig.imaps(), "implicit", &rig)],
            "oauthbearer",
        )
        .await;
    let mut c = ImapClient::connect(proxy.addrs[0].port()).await;
    // LOGIN, SELECT and FETCH in one write: the last two must reach Dovecot after login.
    let pw = &rig.password;
    c.conn
        .write_all(
            format!("p1 LOGIN {USER} \"{pw}\"\r\np2 SELECT INBOX\r\np3 FETCH 1 BODY.PEEK[]\r\n")
                .as_bytes(),
        )
        .await;
    let mut lines = Vec::new();
    loop {
        let l = c.read_line().await;
        let t = l.text();
        lines.push(t.clone());
        if t.starts_with("p3 ") {
            break;
        }
    }
    let all = lines.join("\n");
    let ok = lines.iter().find(|l| l.starts_with("p1 ")).unwrap();
    assert!(ok.starts_with("p1 OK [CAPABILITY IMAP4rev1"), "{all}");
    assert!(
        !ok.contains("AUTH=PLAIN"),
        "post-login capabilities are the server's: {ok}"
    );
    assert!(all.contains("* 2 EXISTS"), "{all}");
    assert!(all.contains("First message."), "{all}");
    assert!(lines.last().unwrap().starts_with("p3 OK"), "{all}");
    c.logout().await;
    proxy.stop().await;
}

/// Wrong password and unknown user: `NO [AUTHENTICATIONFAILED]` after the delay,
/// and no connection is ever opened upstream. The right password then works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_never_reach_upstream() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let fwd = CountingForwarder::start(rig.imaps()).await;
    let l = ListenerSpec {
        protocol: "imap",
        alternate_first: None,
        tls: "none",
        upstream: fwd.addr,
        upstream_tls: "implicit",
        upstream_ca: Some(rig.dovecot.ca_path().to_path_buf()),
    };
    let proxy = rig.proxy(&[l], "xoauth2").await;
    let port = proxy.addrs[0].port();
    for (user, pw) in [
        (USER, "wrong-password"),
        ("mallory@example.com", rig.password.as_str()),
    ] {
        let mut c = ImapClient::connect(port).await;
        let t0 = Instant::now();
        let r = c.command(&format!("LOGIN {user} \"{pw}\"")).await;
        assert!(
            r.tagged.starts_with("NO [AUTHENTICATIONFAILED]"),
            "{user}: {r:?}"
        );
        assert!(
            t0.elapsed() >= Duration::from_millis(200),
            "failed login answered without delay"
        );
        // The connection stays usable for another try.
        let r = c.command("NOOP").await;
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(
        fwd.count(),
        0,
        "a failed local login opened an upstream connection"
    );
    let mut c = ImapClient::connect(port).await;
    let r = c
        .command(&format!("LOGIN {USER} \"{}\"", rig.password))
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(fwd.count(), 1);
    c.logout().await;
    proxy.stop().await;
}

async fn login_select(port: u16, password: &str) -> Result<u32, String> {
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {USER} \"{password}\"")).await;
    if !r.is_ok() {
        return Err(r.tagged);
    }
    let n = c.select("INBOX").await;
    c.logout().await;
    Ok(n)
}

/// With a 2-second token lifetime, logins keep working over several lifetimes, and
/// 50 concurrent logins after expiry cause exactly one refresh at the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_token_is_refreshed_once_for_concurrent_logins() {
    let rig = Rig::start().await;
    rig.store_tokens(Duration::from_secs(2));
    let proxy = rig
        .proxy(&[spec("none", rig.imaps(), "implicit", &rig)], "xoauth2")
        .await;
    let port = proxy.addrs[0].port();

    // 2-second tokens with a 1-second refresh margin: logins keep working across
    // several expiries, refreshing as they go.
    // Nine logins 700 ms apart span more than three token lifetimes, however fast
    // each login is.
    for _ in 0..9 {
        assert_eq!(login_select(port, &rig.password).await, Ok(2));
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(
        rig.auth.grants("refresh_token") >= 2,
        "tokens were refreshed as they expired"
    );

    // Let the current token expire. Tokens issued from now on outlive the burst, so
    // a second refresh could only come from a single-flight failure.
    rig.auth.set_token_lifetime(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = rig.auth.grants("refresh_token");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let pw = rig.password.clone();
        tasks.push(tokio::spawn(async move { login_select(port, &pw).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(2));
    }
    assert_eq!(
        rig.auth.grants("refresh_token") - before,
        1,
        "50 concurrent logins must refresh once"
    );
    proxy.stop().await;
}

/// A revoked refresh token: the client gets `NO` saying re-authorisation is needed,
/// and the account is marked as needing `login`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_refresh_token_asks_for_reauthorisation() {
    let rig = Rig::start().await;
    rig.store_tokens(Duration::from_secs(1));
    let proxy = rig
        .proxy(&[spec("none", rig.imaps(), "implicit", &rig)], "xoauth2")
        .await;
    rig.auth.revoke_user(USER);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = login_select(proxy.addrs[0].port(), &rig.password)
        .await
        .unwrap_err();
    assert!(err.starts_with("NO [AUTHENTICATIONFAILED]"), "{err}");
    assert!(
        err.contains("re-authoris") && err.contains("oauth-mail-proxy login"),
        "{err}"
    );
    let store = TokenStore::open(&rig.dir.path().join("state")).unwrap();
    assert!(store.load(USER).unwrap().unwrap().needs_login.is_some());
    // A second attempt fails the same way without asking the token endpoint again.
    let requests = rig.auth.token_requests();
    let err = login_select(proxy.addrs[0].port(), &rig.password)
        .await
        .unwrap_err();
    assert!(err.contains("re-authoris"), "{err}");
    assert_eq!(rig.auth.token_requests(), requests);
    proxy.stop().await;
}

/// A token the server rejects (revoked access token, valid refresh token) is
/// refreshed once and the login goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_access_token_is_replaced() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    // Replace the stored access token with one the server does not know.
    let store = TokenStore::open(&rig.dir.path().join("state")).unwrap();
    let mut rec = store.load(USER).unwrap().unwrap();
    rec.access_token = SecretString::from("not-a-valid-token".to_string());
    store.save(USER, &rec).unwrap();
    let proxy = rig
        .proxy(&[spec("none", rig.imap(), "starttls", &rig)], "xoauth2")
        .await;
    assert_eq!(
        login_select(proxy.addrs[0].port(), &rig.password).await,
        Ok(2)
    );
    assert_eq!(rig.auth.grants("refresh_token"), 1);
    proxy.stop().await;
}
