//! Token store robustness through the proxy: a refreshed token that cannot be saved
//! (the disk is "full") is used from memory while the old file stays byte-identical;
//! a file moved to another account's name or corrupted is refused with a clear error
//! without stopping the other accounts; `serve` refuses to start while the state
//! directory, the key or a token file is open to group or others.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::ImapClient;
use common::process::{self, PipedServe};
use common::proxy::{AccountSpec, TestProxy, write_config};
use common::rig::{HOUR, Rig, USER};
use oauth_mail_proxy::oauth::outcome::unix_now;
use oauth_mail_proxy::oauth::{StoreError, TokenRecord, TokenStore};
use secrecy::SecretString;

const CAROL: &str = "carol@example.com";

fn state(rig: &Rig) -> PathBuf {
    rig.dir.path().join("state")
}

/// Stores tokens for `user` valid for `lifetime` (zero: expired, to be refreshed).
fn store_tokens_for(rig: &Rig, user: &str, lifetime: Duration) {
    let (access, refresh) = rig.auth.mint_tokens(user);
    let now = unix_now();
    let rec = TokenRecord {
        account: user.into(),
        access_token: SecretString::from(access),
        refresh_token: Some(SecretString::from(refresh)),
        expires_at: Some(now + lifetime.as_secs()),
        scopes: vec!["mail".into()],
        obtained_at: now,
        last_refresh: None,
        needs_login: None,
        refresh_expires_at: None,
    };
    TokenStore::open(&state(rig))
        .unwrap()
        .save(user, &rec)
        .unwrap();
}

async fn imap_login(port: u16, user: &str, password: &str) -> String {
    let mut c = ImapClient::connect(port).await;
    c.command(&format!("LOGIN {user} \"{password}\""))
        .await
        .tagged
}

/// An IMAP config for USER and CAROL (same local password) listening on `port`.
fn two_account_config(rig: &Rig, port: u16) -> PathBuf {
    let carol = AccountSpec {
        username: CAROL,
        ..rig.account("xoauth2")
    };
    let path = write_config(
        rig.dir.path(),
        &[rig.listener("imap", "none", "implicit")],
        &[rig.account("xoauth2"), carol],
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "bind = \"127.0.0.1:0\"",
        &format!("bind = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_keeps_the_old_file_and_the_new_token_in_memory() {
    let rig = Rig::start().await;
    store_tokens_for(&rig, USER, Duration::ZERO);
    rig.auth.set_token_lifetime(HOUR);
    let file = TokenStore::open(&state(&rig)).unwrap().path_for(USER);
    let before = std::fs::read(&file).unwrap();

    let port = process::free_port();
    let config = two_account_config(&rig, port);
    let args = ["--config", config.to_str().unwrap(), "serve"];
    // No regular file may grow past 0 bytes: saving the refreshed token fails (EFBIG).
    let cmd = process::command_with_file_size_limit(&args, 0);
    let serve = PipedServe::start(cmd, port).await;

    let tagged = imap_login(port, USER, &rig.password).await;
    assert!(tagged.starts_with("OK"), "{tagged}\n{}", serve.output());
    assert_eq!(rig.auth.grants("refresh_token"), 1);
    // The next login uses the refreshed token from memory: no second refresh.
    let tagged = imap_login(port, USER, &rig.password).await;
    assert!(tagged.starts_with("OK"), "{tagged}");
    assert_eq!(rig.auth.grants("refresh_token"), 1);

    assert_eq!(std::fs::read(&file).unwrap(), before, "old file changed");
    let stray: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "temporary files left: {stray:?}");
    let (_, out) = serve.terminate().await;
    let warning = out
        .lines()
        .find(|l| l.contains("cannot save the refreshed token"))
        .unwrap_or_else(|| panic!("no warning in:\n{out}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.to_lowercase().contains("file too large"),
        "{warning}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_or_corrupt_entries_are_refused_without_stopping_other_accounts() {
    let rig = Rig::start().await;
    rig.dovecot.seed_message(
        CAROL,
        b"From: alice@example.com\r\nTo: carol@example.com\r\nSubject: hi\r\n\r\nHi.\r\n",
    );
    store_tokens_for(&rig, USER, HOUR);
    store_tokens_for(&rig, CAROL, HOUR);
    let store = TokenStore::open(&state(&rig)).unwrap();
    let (alice_file, carol_file) = (store.path_for(USER), store.path_for(CAROL));
    let carol_original = std::fs::read(&carol_file).unwrap();
    let config = two_account_config(&rig, 0);

    // Alice's file under Carol's name: the AEAD binds the account, so it is refused.
    std::fs::copy(&alice_file, &carol_file).unwrap();
    let err = store.load(CAROL).unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&carol_file.display().to_string())
            && msg.contains("copied from another account"),
        "{msg}"
    );
    check_isolation(&config, &rig).await;

    // A flipped byte in Carol's own file: refused the same way.
    let mut corrupt = carol_original.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x01;
    std::fs::write(&carol_file, &corrupt).unwrap();
    let err = store.load(CAROL).unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err:?}");
    check_isolation(&config, &rig).await;
    // A refused file is never overwritten.
    assert_eq!(std::fs::read(&carol_file).unwrap(), corrupt);

    // Restored, Carol logs in again.
    std::fs::write(&carol_file, &carol_original).unwrap();
    let proxy = TestProxy::start(&config).await;
    let tagged = imap_login(proxy.addrs[0].port(), CAROL, &rig.password).await;
    assert!(tagged.starts_with("OK"), "{tagged}");
    proxy.stop().await;
}

/// Carol's login fails with a temporary error; Alice's (before and after) works.
async fn check_isolation(config: &Path, rig: &Rig) {
    let proxy = TestProxy::start(config).await;
    let port = proxy.addrs[0].port();
    let alice = imap_login(port, USER, &rig.password).await;
    assert!(alice.starts_with("OK"), "{alice}");
    let carol = imap_login(port, CAROL, &rig.password).await;
    assert!(carol.starts_with("NO [UNAVAILABLE]"), "{carol}");
    let alice = imap_login(port, USER, &rig.password).await;
    assert!(alice.starts_with("OK"), "{alice}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_group_or_world_readable_token_files() {
    let rig = Rig::start().await;
    store_tokens_for(&rig, USER, HOUR);
    let state = state(&rig);
    let token = TokenStore::open(&state).unwrap().path_for(USER);
    let key = state.join("token.key");
    let tokens = state.join("tokens");
    let config = two_account_config(&rig, process::free_port());
    let chmod = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let cases: [(&Path, u32, u32, &str); 4] = [
        (&token, 0o644, 0o600, "chmod 600"),
        (&key, 0o640, 0o600, "chmod 600"),
        (&state, 0o755, 0o700, "chmod 700"),
        (&tokens, 0o750, 0o700, "chmod 700"),
    ];
    for (path, bad, good, fix) in cases {
        chmod(path, bad);
        let out = process::run_with_config(&config, &["serve"]).await;
        assert!(!out.success(), "{}: serve started", path.display());
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains(&path.display().to_string()) && all.contains(fix),
            "{}:\n{all}",
            path.display()
        );
        chmod(path, good);
    }
}
