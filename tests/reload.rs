//! Reload on SIGHUP and graceful shutdown on SIGTERM, with the real binary against
//! the Dovecot rig.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::ImapClient;
use common::process::{ServeProcess, free_port, sighup, sigterm, wait_exit};
use common::proxy::{AccountSpec, write_config};
use common::rig::{HOUR, Rig, USER};
use oauth_mail_proxy::oauth::{TokenRecord, TokenStore};
use secrecy::SecretString;

/// Stores tokens for the local account `account`, minted for the mailbox USER.
fn store_tokens_for(rig: &Rig, account: &str) {
    let (access, refresh) = rig.auth.mint_tokens(USER);
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    let store = TokenStore::open(&rig.dir.path().join("state")).unwrap();
    let rec = TokenRecord {
        account: account.into(),
        access_token: SecretString::from(access),
        refresh_token: Some(SecretString::from(refresh)),
        expires_at: Some(now + HOUR.as_secs()),
        scopes: vec!["mail".into()],
        obtained_at: now,
        last_refresh: None,
        needs_login: None,
        refresh_expires_at: None,
    };
    store.save(account, &rec).unwrap();
}

/// A local account acting as the mailbox USER.
fn alias<'a>(rig: &'a Rig, name: &'a str) -> AccountSpec<'a> {
    AccountSpec {
        username: name,
        extra: "upstream_username = \"alice@example.com\"\n",
        ..rig.account("xoauth2")
    }
}

/// A config with one IMAP listener per port (to Dovecot) and these accounts.
fn config(rig: &Rig, ports: &[u16], accounts: &[AccountSpec], extra_proxy: &str) -> PathBuf {
    let dir = rig.dir.path().join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let listeners: Vec<_> = ports
        .iter()
        .map(|_| rig.listener("imap", "none", "implicit"))
        .collect();
    let path = write_config(&dir, &listeners, accounts);
    let mut text = std::fs::read_to_string(&path).unwrap();
    for p in ports {
        text = text.replacen(
            "bind = \"127.0.0.1:0\"",
            &format!("bind = \"127.0.0.1:{p}\""),
            1,
        );
    }
    // One state dir for every version of the config.
    let state = rig.dir.path().join("state");
    text = text.replace(
        &dir.join("state").display().to_string(),
        &state.display().to_string(),
    );
    text = text.replacen("[proxy]\n", &format!("[proxy]\n{extra_proxy}"), 1);
    let out = rig.dir.path().join("proxy.toml");
    std::fs::write(&out, text).unwrap();
    out
}

/// SIGHUP alone: no file watch.
const NO_WATCH: &str = "watch_config = \"0s\"\n";

async fn login(port: u16, user: &str, password: &str) -> (ImapClient, bool) {
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {user} \"{password}\"")).await;
    let ok = r.is_ok();
    (c, ok)
}

fn refused(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_accounts_and_listeners_and_keeps_sessions() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    for a in ["bob@example.com", "carol@example.com"] {
        store_tokens_for(&rig, a);
    }
    let (dropped_port, new_port) = (free_port(), free_port());
    let log = rig.dir.path().join("serve.log");
    let serve = ServeProcess::start(
        |port| {
            let accounts = [rig.account("xoauth2"), alias(&rig, "bob@example.com")];
            config(&rig, &[port, dropped_port], &accounts, NO_WATCH)
        },
        &[],
        &log,
    )
    .await;
    let main = serve.port;
    let pw = rig.password.clone();

    // A spliced session that must survive the reloads.
    let (mut open, ok) = login(main, USER, &pw).await;
    assert!(ok);
    open.select("INBOX").await;
    let (c, ok) = login(main, "bob@example.com", &pw).await;
    assert!(ok, "bob logs in before the reload");
    c.logout().await;
    assert!(!refused(dropped_port));

    // Add carol and a listener, remove bob and the second listener.
    let accounts = [rig.account("xoauth2"), alias(&rig, "carol@example.com")];
    config(&rig, &[main, new_port], &accounts, NO_WATCH);
    sighup(&serve.child);
    serve.wait_for_output("configuration reloaded", 1).await;
    let (c, ok) = login(new_port, "carol@example.com", &pw).await;
    assert!(
        ok,
        "the new account logs in on the new listener:\n{}",
        serve.output()
    );
    c.logout().await;
    let (c, ok) = login(main, "bob@example.com", &pw).await;
    assert!(!ok, "the removed account is refused");
    c.logout().await;
    assert!(
        refused(dropped_port),
        "the removed listener no longer accepts"
    );
    assert!(
        open.command("NOOP").await.is_ok(),
        "the open session still works"
    );

    // A broken config is refused and the running one kept.
    std::fs::write(
        &serve.config,
        "[[listener]]\nprotocol = \"gopher\"\nupstream = \"x\"\n",
    )
    .unwrap();
    sighup(&serve.child);
    serve.wait_for_output("reload refused", 1).await;
    let out = serve.output();
    assert!(
        out.contains("keeping the running configuration") && out.contains("`listener.protocol`"),
        "the log says why:\n{out}"
    );
    let (c, ok) = login(new_port, "carol@example.com", &pw).await;
    assert!(ok, "the old config still serves");
    c.logout().await;
    assert!(open.command("NOOP").await.is_ok());
    open.logout().await;
    let (status, out) = serve.terminate().await;
    assert!(status.success(), "{status}:\n{out}");
}

/// `watch_config`: an edited config applies without a signal, and an edit that
/// breaks it is refused with the old one kept, as with SIGHUP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_config_file_is_reloaded_without_a_signal() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    store_tokens_for(&rig, "carol@example.com");
    let watch = "watch_config = \"100ms\"\n";
    let log = rig.dir.path().join("serve.log");
    let serve = ServeProcess::start(
        |port| config(&rig, &[port], &[rig.account("xoauth2")], watch),
        &[],
        &log,
    )
    .await;
    let pw = rig.password.clone();
    let (c, ok) = login(serve.port, "carol@example.com", &pw).await;
    assert!(!ok, "carol is not configured yet");
    c.logout().await;

    let accounts = [rig.account("xoauth2"), alias(&rig, "carol@example.com")];
    config(&rig, &[serve.port], &accounts, watch);
    serve.wait_for_output("configuration reloaded", 1).await;
    assert!(serve.output().contains("a configuration file changed"));
    let (c, ok) = login(serve.port, "carol@example.com", &pw).await;
    assert!(ok, "the added account logs in:\n{}", serve.output());
    c.logout().await;

    std::fs::write(&serve.config, "[proxy]\nwatch_config = \"soon\"\n").unwrap();
    serve.wait_for_output("reload refused", 1).await;
    assert!(
        serve.output().contains("`proxy.watch_config`"),
        "the log says why:\n{}",
        serve.output()
    );
    let (c, ok) = login(serve.port, "carol@example.com", &pw).await;
    assert!(ok, "the running config still serves");
    c.logout().await;
    let reloads = serve.output().matches("configuration reloaded").count();
    assert_eq!(reloads, 1, "one reload per edit:\n{}", serve.output());
    let (status, out) = serve.terminate().await;
    assert!(status.success(), "{status}:\n{out}");
}

/// SIGTERM while a multi-MB FETCH is going through: the transfer completes, new
/// connections are refused, and the process exits 0 once the session has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_transfer_in_progress_finish() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
    let big = format!(
        "Subject: big\r\n\r\n{}",
        line.repeat(8 * 1024 * 1024 / line.len())
    );
    rig.dovecot.seed_message(USER, big.as_bytes());
    let log = rig.dir.path().join("serve.log");
    let mut serve = ServeProcess::start(
        |port| {
            config(
                &rig,
                &[port],
                &[rig.account("xoauth2")],
                "drain_timeout = \"60s\"\n",
            )
        },
        &[],
        &log,
    )
    .await;
    let (mut c, ok) = login(serve.port, USER, &rig.password).await;
    assert!(ok);
    assert_eq!(c.select("INBOX").await, 3);
    c.conn.send_line("f1 FETCH 3 BODY.PEEK[]").await;
    let head = String::from_utf8(c.conn.read_line_bytes().await).unwrap();
    let size: usize = head
        .rsplit_once('{')
        .and_then(|(_, n)| n.trim_end().strip_suffix('}')?.parse().ok())
        .unwrap_or_else(|| panic!("no literal in {head:?}"));
    assert!(size > 8_000_000, "{head}");
    let first = c.conn.read_exact(64 * 1024).await;

    sigterm(&serve.child);
    serve.wait_for_output("shutting down", 1).await;
    // The log line comes just before the accept loops are told to stop.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !refused(serve.port) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused(serve.port), "no new connections after SIGTERM");
    assert!(
        wait_exit(&mut serve.child, Duration::from_millis(500))
            .await
            .is_none(),
        "the process waits for the spliced session"
    );
    let rest = c.conn.read_exact(size - first.len()).await;
    let mut body = first;
    body.extend_from_slice(&rest);
    assert_eq!(body, big.as_bytes(), "the whole message arrived");
    let end = c.conn.read_line().await;
    assert_eq!(end, ")", "end of the FETCH response");
    assert!(c.conn.read_line().await.starts_with("f1 OK"));
    c.logout().await;
    let status = wait_exit(&mut serve.child, Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("no exit after the session ended:\n{}", serve.output()));
    assert!(status.success(), "{status}:\n{}", serve.output());
}

/// A second SIGTERM while draining closes the spliced sessions at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_sigterm_ends_the_drain() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let log = rig.dir.path().join("serve.log");
    let mut serve = ServeProcess::start(
        |port| {
            config(
                &rig,
                &[port],
                &[rig.account("xoauth2")],
                "drain_timeout = \"10m\"\n",
            )
        },
        &[],
        &log,
    )
    .await;
    let (mut c, ok) = login(serve.port, USER, &rig.password).await;
    assert!(ok);
    sigterm(&serve.child);
    serve.wait_for_output("shutting down", 1).await;
    assert!(
        c.command("NOOP").await.is_ok(),
        "still spliced while draining"
    );
    sigterm(&serve.child);
    let status = wait_exit(&mut serve.child, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("no exit after the second SIGTERM:\n{}", serve.output()));
    assert!(status.success(), "{status}:\n{}", serve.output());
    assert!(c.conn.closed().await, "the spliced session was closed");
}
