//! Account operations end to end: the real binary (`status`, `verify`, `logout`,
//! `export`/`import`, `import-token`) against the test authorization server and a real
//! Dovecot, and `notify_command` run by the proxy.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::ImapClient;
use common::process::{self, Finished};
use common::proxy::{ListenerSpec, TestProxy, write_config};
use common::rig::{HOUR, Rig, USER};
use oauth_mail_proxy::oauth::TokenStore;
use secrecy::ExposeSecret;

const PASSPHRASE: &str = "correct horse battery staple";

/// Writes the rig's config with `listeners`, plus `extra_proxy` lines in `[proxy]` and
/// `extra_account` lines in the account.
fn config(
    rig: &Rig,
    listeners: &[ListenerSpec],
    extra_proxy: &str,
    extra_account: &str,
) -> PathBuf {
    let path = write_config(rig.dir.path(), listeners, &[rig.account("xoauth2")]);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replacen("[proxy]\n", &format!("[proxy]\n{extra_proxy}"), 1);
    text = text.replacen(
        "mechanism = \"xoauth2\"\n",
        &format!("mechanism = \"xoauth2\"\n{extra_account}"),
        1,
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn store(rig: &Rig) -> TokenStore {
    TokenStore::open(&rig.dir.path().join("state")).unwrap()
}

async fn run(config: &Path, args: &[&str], env: &[(&str, &str)], input: &[u8]) -> Finished {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut cmd = process::command(&all);
    cmd.env_remove("OAUTH_MAIL_PROXY_PASSPHRASE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    process::run(cmd, input).await
}

fn assert_no_secret(out: &Finished, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "a secret was printed:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

fn status_json(out: &Finished) -> serde_json::Value {
    assert!(out.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("status --json is JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    v[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_before_after_and_needs_login() {
    let rig = Rig::start().await;
    let cfg = config(&rig, &[], "", "");

    let s = status_json(&run(&cfg, &["status", "--json"], &[], b"").await);
    assert_eq!(s["account"], USER);
    assert_eq!(s["flow"], "authorization_code");
    assert_eq!(s["token_present"], false);
    assert_eq!(s["needs_login"], true);
    assert!(s["access_token_valid_until"].is_null());

    let (access, refresh) = rig.store_tokens(HOUR);
    let out = run(&cfg, &["status", "--json", USER], &[], b"").await;
    assert_no_secret(&out, &[&access, &refresh]);
    let s = status_json(&out);
    assert_eq!(s["token_present"], true);
    assert_eq!(s["access_token_valid"], true);
    assert_eq!(s["refresh_token_present"], true);
    assert_eq!(s["needs_login"], false);
    assert!(s["last_error"].is_null());
    let until = s["access_token_valid_until"].as_u64().unwrap();
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    assert!(until > now + 3000 && until <= now + 3600, "{s}");

    let st = store(&rig);
    let mut rec = st.load(USER).unwrap().unwrap();
    rec.needs_login = Some("refresh token rejected: invalid_grant".into());
    st.save(USER, &rec).unwrap();
    let s = status_json(&run(&cfg, &["status", "--json"], &[], b"").await);
    assert_eq!(s["needs_login"], true);
    assert_eq!(s["last_error"], "refresh token rejected: invalid_grant");

    // The table names the account and what to do.
    let out = run(&cfg, &["status"], &[], b"").await;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.starts_with("ACCOUNT"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("oauth-mail-proxy login {USER}")),
        "{}",
        out.stdout
    );
    let out = run(&cfg, &["status", "nobody@example.com"], &[], b"").await;
    assert!(!out.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_sends_a_test_message_and_classifies_a_revoked_grant() {
    let rig = Rig::start().await;
    let listeners = [
        rig.listener("imap", "none", "implicit"),
        rig.listener("pop3", "none", "implicit"),
        rig.listener("smtp", "none", "implicit"),
    ];
    let cfg = config(&rig, &listeners, "", "");
    let (access, refresh) = rig.store_tokens(HOUR);

    let out = run(&cfg, &["verify"], &[], b"").await;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout
            .contains("INBOX has 2 message(s); oldest: Subject \"one\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("mailbox has 2 message(s)"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("result: PASS"), "{}", out.stdout);
    assert_no_secret(&out, &[&access, &refresh]);

    let out = run(
        &cfg,
        &["verify", USER, "--send-test", "bob@example.com"],
        &[],
        b"",
    )
    .await;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout
            .contains("test message to bob@example.com accepted"),
        "{}",
        out.stdout
    );
    let msgs = rig
        .dovecot
        .sink
        .wait_for_messages(1, Duration::from_secs(20))
        .await;
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].mail_from.contains(USER), "{:?}", msgs[0].mail_from);
    assert!(
        msgs[0]
            .rcpt_to
            .iter()
            .any(|r| r.contains("bob@example.com"))
    );
    assert!(String::from_utf8_lossy(&msgs[0].data).contains("oauth-mail-proxy test message"));

    rig.auth.revoke_user(USER);
    let out = run(&cfg, &["verify"], &[], b"").await;
    assert!(!out.success(), "{out:?}");
    assert!(out.stdout.contains("FAILED"), "{}", out.stdout);
    assert!(
        out.stdout.contains("(refresh_token_revoked)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(&format!("1. run `oauth-mail-proxy login {USER}`")),
        "{}",
        out.stdout
    );
    assert!(out.stderr.contains("verification failed"), "{}", out.stderr);
    assert_no_secret(&out, &[&access, &refresh]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_and_deletes() {
    let rig = Rig::start().await;
    let revoke = format!("revocation_url = \"{}\"\n", rig.auth.revocation_url());
    let cfg = config(&rig, &[], "", &revoke);
    let (access, refresh) = rig.store_tokens(HOUR);
    let valid = rig.auth.validator();
    assert!(valid(USER, &access));

    let out = run(&cfg, &["logout", USER], &[], b"").await;
    assert!(out.success(), "{out:?}");
    assert_no_secret(&out, &[&access, &refresh]);
    assert_eq!(rig.auth.revocations(), 1);
    assert!(
        out.stdout.contains("refresh_token revoked"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("tokens deleted"), "{}", out.stdout);
    assert!(store(&rig).load(USER).unwrap().is_none());
    assert!(
        !valid(USER, &access),
        "the family's access token is revoked too"
    );

    // Nothing left: says so, no request.
    let out = run(&cfg, &["logout", USER], &[], b"").await;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("nothing to do"), "{}", out.stdout);
    assert_eq!(rig.auth.revocations(), 1);

    // Without a revocation endpoint the tokens are deleted and the output says why.
    let cfg = config(&rig, &[], "", "");
    rig.store_tokens(HOUR);
    let out = run(&cfg, &["logout", USER], &[], b"").await;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains("no revocation endpoint"),
        "{}",
        out.stdout
    );
    assert!(store(&rig).load(USER).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trip_and_wrong_passphrase() {
    let rig = Rig::start().await;
    let cfg = config(&rig, &[rig.listener("imap", "none", "implicit")], "", "");
    let (access, refresh) = rig.store_tokens(HOUR);
    let file = rig.dir.path().join("backup.omp");
    let env = [("OAUTH_MAIL_PROXY_PASSPHRASE", PASSPHRASE)];

    // No passphrase and no terminal: a clear error.
    let out = run(&cfg, &["export", file.to_str().unwrap()], &[], b"").await;
    assert!(!out.success());
    assert!(
        out.stderr.contains("OAUTH_MAIL_PROXY_PASSPHRASE"),
        "{}",
        out.stderr
    );

    let out = run(&cfg, &["export", file.to_str().unwrap()], &env, b"").await;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("1 account(s)"), "{}", out.stdout);
    assert_no_secret(&out, &[&access, &refresh, PASSPHRASE]);
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let bytes = std::fs::read(&file).unwrap();
    let secret = &rig.auth.config().client_secret;
    for s in [
        access.as_bytes(),
        refresh.as_bytes(),
        secret.as_bytes(),
        USER.as_bytes(),
    ] {
        assert!(
            !bytes.windows(s.len()).any(|w| w == s),
            "plaintext in the export"
        );
    }

    let st = store(&rig);
    assert!(st.delete(USER).unwrap());

    let wrong = [("OAUTH_MAIL_PROXY_PASSPHRASE", "not the passphrase")];
    let out = run(&cfg, &["import", file.to_str().unwrap()], &wrong, b"").await;
    assert!(!out.success());
    assert!(out.stderr.contains("wrong passphrase"), "{}", out.stderr);
    assert!(st.load(USER).unwrap().is_none(), "nothing changed");

    let out = run(&cfg, &["import", file.to_str().unwrap()], &env, b"").await;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains(&format!("{USER}: token record added")),
        "{}",
        out.stdout
    );
    assert_no_secret(&out, &[&access, &refresh, PASSPHRASE]);
    let rec = st.load(USER).unwrap().unwrap();
    assert_eq!(rec.refresh_token.unwrap().expose_secret(), refresh);

    let out = run(&cfg, &["verify"], &[], b"").await;
    assert!(out.success(), "{out:?}");

    // Into a config without the account: the token record is kept and the account's
    // block offered (its secret in a private file, not on the screen).
    let other = tempfile::tempdir().unwrap();
    let other_cfg = other.path().join("proxy.toml");
    std::fs::write(
        &other_cfg,
        format!(
            "[proxy]\nstate_dir = \"{}\"\n",
            other.path().join("state").display()
        ),
    )
    .unwrap();
    let out = run(&other_cfg, &["import", file.to_str().unwrap()], &env, b"").await;
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("[[account]]"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("username = \"{USER}\"")),
        "{}",
        out.stdout
    );
    assert_no_secret(&out, &[&access, &refresh, secret]);
    let blocks =
        std::fs::read_to_string(other.path().join("state/imported-accounts.toml")).unwrap();
    assert!(blocks.contains(secret.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_token_then_a_login_refreshes() {
    let rig = Rig::start().await;
    let cfg = config(&rig, &[rig.listener("imap", "none", "implicit")], "", "");
    let (_access, refresh) = rig.auth.mint_tokens(USER);
    let out = run(
        &cfg,
        &["import-token", USER],
        &[],
        format!("{refresh}\n").as_bytes(),
    )
    .await;
    assert!(out.success(), "{out:?}");
    assert_no_secret(&out, &[&refresh]);
    let s = status_json(&run(&cfg, &["status", "--json"], &[], b"").await);
    assert_eq!(s["token_present"], true);
    assert_eq!(s["access_token_valid"], false);
    assert_eq!(s["needs_login"], false);

    let before = rig.auth.grants("refresh_token");
    let proxy = TestProxy::start(&cfg).await;
    let mut c = ImapClient::connect(proxy.addrs[0].port()).await;
    let r = c
        .command(&format!("LOGIN {USER} \"{}\"", rig.password))
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(c.select("INBOX").await, 2);
    c.logout().await;
    assert_eq!(rig.auth.grants("refresh_token"), before + 1);
    proxy.stop().await;

    let out = run(&cfg, &["import-token", USER], &[], b"two words\n").await;
    assert!(!out.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_command_runs_once_on_invalid_grant() {
    let rig = Rig::start().await;
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
    let cfg = config(
        &rig,
        &[rig.listener("imap", "none", "implicit")],
        &format!("notify_command = \"{}\"\n", script.display()),
        "",
    );
    rig.store_tokens(HOUR);
    let proxy = TestProxy::start(&cfg).await;
    rig.auth.revoke_user(USER);
    for _ in 0..2 {
        let mut c = ImapClient::connect(proxy.addrs[0].port()).await;
        let r = c
            .command(&format!("LOGIN {USER} \"{}\"", rig.password))
            .await;
        assert!(!r.is_ok(), "{r:?}");
    }
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
    assert_eq!(fields[1], "invalid_grant");
    assert!(fields[2].contains("invalid_grant"), "{text}");
    proxy.stop().await;
}
