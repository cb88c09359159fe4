//! Refresh-token expiry notices: the token endpoint announces
//! `refresh_token_expires_in`, the proxy stores the expiry with the tokens, and when it
//! is near (`[proxy] refresh_token_warning`) it logs, shows it in `status` and runs
//! `notify_command` once with `OMP_REASON=refresh_token_expiring`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::ImapClient;
use common::process;
use common::proxy::{TestProxy, write_config};
use common::rig::{Rig, USER};
use oauth_mail_proxy::oauth::TokenStore;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The rig's IMAP config with `notify_command` writing to `notices.log`.
fn config(rig: &Rig, warning: &str) -> (PathBuf, PathBuf) {
    let dir = rig.dir.path();
    let log = dir.join("notices.log");
    let script = dir.join("notify.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$OMP_ACCOUNT|$OMP_REASON|$OMP_MESSAGE\" >> '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = write_config(
        dir,
        &[rig.listener("imap", "none", "implicit")],
        &[rig.account("xoauth2")],
    );
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "[proxy]\n",
        &format!(
            "[proxy]\nnotify_command = \"{}\"\nrefresh_token_warning = \"{warning}\"\n",
            script.display()
        ),
        1,
    );
    std::fs::write(&path, text).unwrap();
    (path, log)
}

async fn login_ok(port: u16, password: &str) {
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {USER} \"{password}\"")).await;
    assert!(r.is_ok(), "{r:?}");
    c.logout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_refresh_token_is_notified_once() {
    let rig = Rig::start().await;
    let (cfg, log) = config(&rig, "7d");
    // Stored without a known refresh expiry; the server announces 3 days from the
    // first refresh on.
    rig.store_tokens(Duration::from_secs(2));
    rig.auth.set_refresh_token_lifetime(Some(3 * DAY));
    let proxy = TestProxy::start(&cfg).await;
    let port = proxy.addrs[0].port();

    login_ok(port, &rig.password).await;
    // Two refreshes (each announcing the expiry again), then a login on the cached
    // token: one notice in all.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        login_ok(port, &rig.password).await;
    }
    login_ok(port, &rig.password).await;
    assert!(rig.auth.grants("refresh_token") >= 2);

    let rec = TokenStore::open(&rig.dir.path().join("state"))
        .unwrap()
        .load(USER)
        .unwrap()
        .unwrap();
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    let at = rec.refresh_expires_at.expect("expiry stored");
    assert!(at > now + 3 * DAY.as_secs() - 60 && at <= now + 3 * DAY.as_secs() + 1);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !log.exists() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = std::fs::read_to_string(&log).expect("notify_command ran");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let fields: Vec<&str> = lines[0].splitn(3, '|').collect();
    assert_eq!(fields[0], USER);
    assert_eq!(fields[1], "refresh_token_expiring");
    assert!(fields[2].contains("login"), "{text}");

    // `status` shows it.
    let out = process::run_with_config(&cfg, &["status", "--json"]).await;
    assert!(out.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["refresh_token_expiring"], true);
    assert_eq!(v[0]["refresh_token_valid_until"], at);
    let out = process::run_with_config(&cfg, &["status"]).await;
    assert!(
        out.stdout.contains("refresh token expiring at"),
        "{}",
        out.stdout
    );
    proxy.stop().await;
}

/// An expiry beyond the warning window: stored and shown, no notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distant_refresh_expiry_is_quiet() {
    let rig = Rig::start().await;
    let (cfg, log) = config(&rig, "1d");
    rig.store_tokens(Duration::from_secs(2));
    rig.auth.set_refresh_token_lifetime(Some(3 * DAY));
    let proxy = TestProxy::start(&cfg).await;
    let port = proxy.addrs[0].port();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    login_ok(port, &rig.password).await;
    assert_eq!(rig.auth.grants("refresh_token"), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!log.exists(), "no notice");
    let out = process::run_with_config(&cfg, &["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["refresh_token_expiring"], false);
    assert!(v[0]["refresh_token_valid_until"].is_u64());
    proxy.stop().await;
}
