//! Failed logins end to end: the per-source, per-user penalty grows and caps but never
//! locks out, a failed login has no side effects (no upstream connection, no token
//! request, no change to the token store), and an unknown user gets byte for byte the
//! reply a wrong password gets, in IMAP, POP3 and SMTP.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::proxy::{CountingForwarder, ListenerSpec, TestProxy, write_config};
use common::rig::{HOUR, Rig, USER};
use common::{ImapClient, LineClient, b64};
use oauth_mail_proxy::oauth::TokenStore;
use tokio::time::Instant;

/// Puts `lines` at the top of the `[proxy]` section of the config at `path`.
fn with_proxy_keys(path: &Path, lines: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    let s = s.replacen("[proxy]\n", &format!("[proxy]\n{lines}"), 1);
    std::fs::write(path, s).unwrap();
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_without_lockout_or_side_effects() {
    let rig = Rig::start().await;
    // An expired access token: the first successful login must refresh it, so the
    // token-request counter shows that failed logins requested nothing.
    rig.store_tokens(HOUR);
    let store = TokenStore::open(&rig.dir.path().join("state")).unwrap();
    let mut rec = store.load(USER).unwrap().expect("record stored");
    rec.expires_at = Some(oauth_mail_proxy::oauth::outcome::unix_now() - 60);
    store.save(USER, &rec).unwrap();
    let upstream = CountingForwarder::start(rig.imap()).await;
    let listener = ListenerSpec {
        upstream: upstream.addr,
        upstream_tls: "none",
        upstream_ca: None,
        ..rig.listener("imap", "none", "none")
    };
    let config = write_config(rig.dir.path(), &[listener], &[rig.account("xoauth2")]);
    with_proxy_keys(&config, "auth_failure_max_delay = \"800ms\"\n");
    let proxy = TestProxy::start(&config).await;
    let port = proxy.addrs[0].port();
    let tokens_dir = rig.dir.path().join("state/tokens");
    let tokens_before = snapshot(&tokens_dir);
    assert!(!tokens_before.is_empty(), "the store holds the record");
    let requests_before = rig.auth.token_requests();

    let wrong = oauth_mail_proxy::secret::random_token(12);
    for (i, at_least_ms) in [200u64, 400, 800, 800].into_iter().enumerate() {
        // A connection per attempt: the per-connection failure limit is not the
        // subject here, the per-source, per-user penalty is.
        let mut c = ImapClient::connect(port).await;
        let started = Instant::now();
        let r = c.command(&format!("LOGIN {USER} \"{wrong}\"")).await;
        let took = started.elapsed();
        assert!(
            r.tagged.contains("NO [AUTHENTICATIONFAILED]"),
            "failure {i}: {r:?}"
        );
        assert!(
            took >= Duration::from_millis(at_least_ms),
            "failure {i} answered after {took:?}, expected at least {at_least_ms} ms"
        );
    }
    assert_eq!(
        upstream.count(),
        0,
        "a failed login opens no upstream connection"
    );
    assert_eq!(
        rig.auth.token_requests(),
        requests_before,
        "a failed login requests no token"
    );
    assert_eq!(
        snapshot(&tokens_dir),
        tokens_before,
        "a failed login changes nothing in the token store"
    );

    // No lockout: the right password logs in at once, refreshing the expired token.
    let mut c = ImapClient::connect(port).await;
    let r = c
        .command(&format!("LOGIN {USER} \"{}\"", rig.password))
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(c.select("INBOX").await, 2);
    c.logout().await;
    assert_eq!(upstream.count(), 1, "the successful login went upstream");
    assert_eq!(
        rig.auth.token_requests(),
        requests_before + 1,
        "and refreshed"
    );
    proxy.stop().await;
}

/// What a client sees for one failed login, after the greeting (which is the same for
/// everyone): every reply byte, in order.
async fn failed_login_transcript(protocol: &str, port: u16, user: &str, pw: &str) -> Vec<u8> {
    let mut c = LineClient::connect(port).await;
    let mut seen = Vec::new();
    c.read_line_bytes().await; // greeting
    let plain = b64(format!("\0{user}\0{pw}"));
    match protocol {
        "imap" => {
            c.send_line(&format!("a LOGIN {user} \"{pw}\"")).await;
            seen.extend(c.read_line_bytes().await);
            c.send_line(&format!("b AUTHENTICATE PLAIN {plain}")).await;
            seen.extend(c.read_line_bytes().await);
        }
        "pop3" => {
            c.send_line(&format!("USER {user}")).await;
            seen.extend(c.read_line_bytes().await);
            c.send_line(&format!("PASS {pw}")).await;
            seen.extend(c.read_line_bytes().await);
            c.send_line(&format!("AUTH PLAIN {plain}")).await;
            seen.extend(c.read_line_bytes().await);
        }
        _ => {
            c.send_line("EHLO client.example").await;
            loop {
                let line = c.read_line_bytes().await;
                seen.extend(&line);
                if line.get(3) == Some(&b' ') {
                    break;
                }
            }
            c.send_line(&format!("AUTH PLAIN {plain}")).await;
            seen.extend(c.read_line_bytes().await);
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_get_identical_replies() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing goes upstream here; a closed port stands in for the server.
    let closed = common::process::free_port();
    let spec = |protocol| ListenerSpec {
        protocol,
        alternate_first: None,
        tls: "none",
        upstream: format!("127.0.0.1:{closed}").parse().unwrap(),
        upstream_tls: "none",
        upstream_ca: None,
    };
    let password = oauth_mail_proxy::secret::random_token(12);
    let hash =
        oauth_mail_proxy::accounts::hash_password(&secrecy::SecretString::from(password.clone()));
    let account = common::proxy::AccountSpec {
        username: USER,
        password_hash: &hash,
        client_id: "client",
        client_secret: "secret",
        authorize_url: "http://127.0.0.1:9/authorize",
        token_url: "http://127.0.0.1:9/token",
        mechanism: "xoauth2",
        extra: "",
    };
    let config = write_config(
        dir.path(),
        &[spec("imap"), spec("pop3"), spec("smtp")],
        &[account],
    );
    // Keep the penalty short: this test makes a dozen failures from one source.
    with_proxy_keys(&config, "auth_failure_max_delay = \"200ms\"\n");
    let proxy = TestProxy::start(&config).await;
    let wrong = oauth_mail_proxy::secret::random_token(12);
    for (protocol, addr) in ["imap", "pop3", "smtp"].into_iter().zip(&proxy.addrs) {
        let port = addr.port();
        let unknown = failed_login_transcript(protocol, port, "nobody@example.com", &wrong).await;
        let known = failed_login_transcript(protocol, port, USER, &wrong).await;
        let text = String::from_utf8_lossy(&known);
        assert_eq!(
            String::from_utf8_lossy(&unknown),
            text,
            "{protocol}: unknown user vs wrong password"
        );
        let expected = match protocol {
            "imap" => "a NO [AUTHENTICATIONFAILED] ",
            "pop3" => "-ERR [AUTH] ",
            _ => "535 5.7.8 ",
        };
        assert!(text.contains(expected), "{protocol}: {text}");
        assert!(
            !text.contains(USER) && !text.contains("nobody"),
            "{protocol}: no user name echoed: {text}"
        );
    }
    proxy.stop().await;
}
