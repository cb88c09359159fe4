//! Local passwords and accounts, end to end through the proxy to a real Dovecot:
//! named app passwords (added, listed and revoked with the real binary while the
//! proxy runs), template accounts (`*@example.com` with a password file, one set of
//! tokens per mailbox), and the JWT bearer flow (a service-account key signs for the
//! mailbox user).

mod common;

use std::path::{Path, PathBuf};

use common::ImapClient;
use common::process;
use common::proxy::{ListenerSpec, TestProxy, write_config};
use common::rig::{HOUR, Rig, USER};
use oauth_mail_proxy::oauth::{TokenRecord, TokenStore};
use secrecy::SecretString;

const CAROL: &str = "carol@example.com";
const DAVE: &str = "dave@example.com";

fn imap_listener(rig: &Rig) -> ListenerSpec {
    rig.listener("imap", "none", "implicit")
}

/// `LOGIN user password` through the proxy: the tagged response.
async fn login(port: u16, user: &str, password: &str) -> (ImapClient, common::ImapResponse) {
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {user} \"{password}\"")).await;
    (c, r)
}

/// Logs in and returns the INBOX message count; panics if the login fails.
async fn inbox_count(port: u16, user: &str, password: &str) -> u32 {
    let (mut c, r) = login(port, user, password).await;
    assert!(r.is_ok(), "{user}: {r:?}");
    let n = c.select("INBOX").await;
    c.logout().await;
    n
}

/// Stores fresh tokens for `user` (keyed by that user name), as `login` would.
fn store_tokens_for(rig: &Rig, user: &str) {
    let (access, refresh) = rig.auth.mint_tokens(user);
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    let store = TokenStore::open(&rig.dir.path().join("state")).unwrap();
    let rec = TokenRecord {
        account: user.into(),
        access_token: SecretString::from(access),
        refresh_token: Some(SecretString::from(refresh)),
        expires_at: Some(now + HOUR.as_secs()),
        scopes: vec!["mail".into()],
        obtained_at: now,
        last_refresh: None,
        needs_login: None,
        refresh_expires_at: None,
    };
    store.save(user, &rec).unwrap();
}

fn hash(pw: &str) -> String {
    oauth_mail_proxy::accounts::hash_password(&SecretString::from(pw.to_string()))
}

/// Appends `text` to the config file at `path`.
fn append(path: &Path, text: &str) {
    let mut s = std::fs::read_to_string(path).unwrap();
    s.push_str(text);
    std::fs::write(path, s).unwrap();
}

/// A config with the rig's IMAP listener and no account yet.
fn base_config(rig: &Rig) -> PathBuf {
    write_config(rig.dir.path(), &[imap_listener(rig)], &[])
}

/// The custom-provider keys of the rig's authorization server.
fn oauth_keys(rig: &Rig) -> String {
    let c = rig.auth.config();
    format!(
        "provider = \"custom\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nscopes = [\"mail\"]\n",
        c.client_id,
        c.client_secret,
        rig.auth.authorize_url(),
        rig.auth.token_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_password_add_login_revoke() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let config = write_config(
        rig.dir.path(),
        &[imap_listener(&rig)],
        &[rig.account("xoauth2")],
    );
    let proxy = TestProxy::start(&config).await;
    let port = proxy.addrs[0].port();

    let added = process::run_with_config(&config, &["app-password", "add", USER, "helpdesk"]).await;
    assert!(added.success(), "{added:?}");
    let app_pw = added.stdout.trim().to_string();
    assert_eq!(app_pw.len(), 24, "one 24-character password on stdout");
    let file = std::fs::read_to_string(rig.dir.path().join("state/app-passwords.json")).unwrap();
    assert!(
        file.contains("helpdesk") && !file.contains(&app_pw),
        "hash only"
    );
    let other = process::run_with_config(&config, &["app-password", "add", USER, "scanner"]).await;
    assert!(other.success(), "{other:?}");

    // The running proxy sees the new password without a restart; both work.
    assert_eq!(inbox_count(port, USER, &app_pw).await, 2);
    assert_eq!(inbox_count(port, USER, &rig.password).await, 2);

    let list = process::run_with_config(&config, &["app-password", "list", USER]).await;
    assert!(list.success(), "{list:?}");
    assert!(
        list.stdout.contains("helpdesk\tcreated ") && list.stdout.contains("scanner"),
        "{}",
        list.stdout
    );
    assert!(!list.stdout.contains(&app_pw));

    let revoked =
        process::run_with_config(&config, &["app-password", "revoke", USER, "helpdesk"]).await;
    assert!(revoked.success(), "{revoked:?}");
    let (_c, r) = login(port, USER, &app_pw).await;
    assert!(
        r.tagged.starts_with("NO"),
        "revoked password refused: {r:?}"
    );
    assert_eq!(inbox_count(port, USER, &rig.password).await, 2);

    // Unknown accounts and names are refused with a message.
    let again =
        process::run_with_config(&config, &["app-password", "revoke", USER, "helpdesk"]).await;
    assert!(!again.success() && again.stderr.contains("no app password named \"helpdesk\""));
    let unknown =
        process::run_with_config(&config, &["app-password", "add", "nobody@x.org", "a"]).await;
    assert!(!unknown.success() && unknown.stderr.contains("no account \"nobody@x.org\""));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_account_serves_each_mailbox_with_its_own_tokens() {
    let rig = Rig::start().await;
    rig.dovecot.seed_message(
        CAROL,
        b"From: alice@example.com\r\nTo: carol@example.com\r\nSubject: for carol\r\n\r\nHi Carol.\r\n",
    );
    let (alice_pw, carol_pw, dave_pw) = ("alice-local-1", "carol-local-2", "dave-local-3");
    let passwd = rig.dir.path().join("users.passwd");
    std::fs::write(
        &passwd,
        format!(
            "# local users\n{USER}:{}\n{CAROL}:{}\n\n{DAVE}:{}\n",
            hash(alice_pw),
            hash(carol_pw),
            hash(dave_pw)
        ),
    )
    .unwrap();
    let config = base_config(&rig);
    append(
        &config,
        &format!(
            "[[account]]\nusername = \"*@example.com\"\npassword_file = \"users.passwd\"\n{}",
            oauth_keys(&rig)
        ),
    );
    store_tokens_for(&rig, USER);
    store_tokens_for(&rig, CAROL);
    let proxy = TestProxy::start(&config).await;
    let port = proxy.addrs[0].port();

    assert_eq!(inbox_count(port, USER, alice_pw).await, 2);
    let (mut c, r) = login(port, CAROL, carol_pw).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(c.select("INBOX").await, 1);
    let body = String::from_utf8(c.fetch_body(1).await).unwrap();
    assert!(body.contains("Subject: for carol"), "{body}");
    c.logout().await;

    // One user's password is not another's; a user not in the file is unknown.
    let (_c, r) = login(port, CAROL, alice_pw).await;
    assert!(r.tagged.starts_with("NO"), "{r:?}");
    let (_c, r) = login(port, "eve@example.com", alice_pw).await;
    assert!(r.tagged.starts_with("NO"), "{r:?}");

    // A listed user without tokens is told to run `login` for that address.
    let (_c, r) = login(port, DAVE, dave_pw).await;
    assert!(r.tagged.starts_with("NO"), "{r:?}");
    assert!(
        r.tagged.contains(&format!("oauth-mail-proxy login {DAVE}")),
        "{r:?}"
    );
    proxy.stop().await;

    // `login` accepts a concrete address of the template (it gets as far as
    // printing the authorization URL for that user) but not other addresses.
    let bad = process::run_with_config(
        &config,
        &[
            "login",
            "eve@example.com",
            "--no-browser",
            "--timeout",
            "1s",
        ],
    )
    .await;
    assert!(
        !bad.success() && bad.stderr.contains("eve@example.com"),
        "{bad:?}"
    );
    let ok = process::run_with_config(&config, &["login", DAVE, "--no-browser", "--timeout", "2s"])
        .await;
    assert!(
        ok.stdout.contains("/authorize?") && !ok.stderr.contains("no [[account]]"),
        "authorization URL for dave: {ok:?}"
    );
}

/// An RSA key pair made with the `openssl` tool: (PKCS#8 private PEM, SPKI public PEM).
fn rsa_key_pair(dir: &Path) -> (String, String) {
    let key = dir.join("sa-key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl genpkey: {out:?}");
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .expect("openssl runs");
    assert!(public.status.success(), "openssl pkey: {public:?}");
    (
        std::fs::read_to_string(&key).unwrap(),
        String::from_utf8(public.stdout).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_bearer_template_logs_each_user_in_without_stored_tokens() {
    let rig = Rig::start().await;
    rig.dovecot.seed_message(
        CAROL,
        b"From: alice@example.com\r\nSubject: for carol\r\n\r\nHi.\r\n",
    );
    let email = "mail-proxy@project.iam.gserviceaccount.com";
    let (private, public) = rsa_key_pair(rig.dir.path());
    rig.auth.set_jwt_public_key(&public, email).unwrap();
    let key = serde_json::json!({
        "type": "service_account",
        "client_email": email,
        "private_key_id": "k1",
        "private_key": private,
        "token_uri": rig.auth.token_url(),
    });
    std::fs::write(rig.dir.path().join("key.json"), key.to_string()).unwrap();
    let passwd = rig.dir.path().join("users.passwd");
    let (alice_pw, carol_pw) = ("alice-local-1", "carol-local-2");
    std::fs::write(
        &passwd,
        format!("{USER}:{}\n{CAROL}:{}\n", hash(alice_pw), hash(carol_pw)),
    )
    .unwrap();
    let config = base_config(&rig);
    append(
        &config,
        &format!(
            "[[account]]\nusername = \"*@example.com\"\npassword_file = \"users.passwd\"\nflow = \"jwt_bearer\"\nservice_account_key = \"key.json\"\n{}",
            oauth_keys(&rig)
        ),
    );
    let proxy = TestProxy::start(&config).await;
    let port = proxy.addrs[0].port();
    assert_eq!(inbox_count(port, USER, alice_pw).await, 2);
    assert_eq!(inbox_count(port, CAROL, carol_pw).await, 1);
    assert_eq!(rig.auth.grants("jwt_bearer"), 2, "one token per mailbox");
    // The second login of a user reuses its token.
    assert_eq!(inbox_count(port, CAROL, carol_pw).await, 1);
    assert_eq!(rig.auth.grants("jwt_bearer"), 2);
    proxy.stop().await;

    // A key the server does not trust gets no token: the login fails, nothing leaks.
    let other = rig.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_public) = rsa_key_pair(&other);
    rig.auth.set_jwt_public_key(&other_public, email).unwrap();
    std::fs::remove_dir_all(rig.dir.path().join("state/tokens")).unwrap();
    let proxy = TestProxy::start(&config).await;
    let (_c, r) = login(proxy.addrs[0].port(), USER, alice_pw).await;
    assert!(r.tagged.starts_with("NO"), "{r:?}");
    proxy.stop().await;
}

/// A config (no Dovecot needed: nothing here goes upstream) with two accounts:
/// alice without app passwords, bob with the maximum of 16.
fn cost_config(dir: &Path, alice_pw: &str, bob_pw: &str) -> PathBuf {
    let listener = common::proxy::ListenerSpec {
        protocol: "imap",
        alternate_first: None,
        tls: "none",
        upstream: "127.0.0.1:9".parse().unwrap(),
        upstream_tls: "none",
        upstream_ca: None,
    };
    let (alice_hash, bob_hash) = (hash(alice_pw), hash(bob_pw));
    let account = |username, password_hash| common::proxy::AccountSpec {
        username,
        password_hash,
        client_id: "client",
        client_secret: "secret",
        authorize_url: "http://127.0.0.1:9/authorize",
        token_url: "http://127.0.0.1:9/token",
        mechanism: "xoauth2",
        extra: "",
    };
    write_config(
        dir,
        &[listener],
        &[
            account(USER, &alice_hash),
            account("bob@example.com", &bob_hash),
        ],
    )
}

fn creds(user: &str, password: &str) -> oauth_mail_proxy::proto::Credentials {
    oauth_mail_proxy::proto::Credentials {
        authzid: None,
        username: user.into(),
        password: SecretString::from(password.to_string()),
    }
}

/// Unknown user, wrong password without app passwords, wrong password with 16 app
/// passwords: each costs exactly one Argon2 verification (no timing oracle), and an
/// app password still logs in.
#[tokio::test]
async fn every_login_check_costs_exactly_one_argon2_verification() {
    use oauth_mail_proxy::accounts::Accounts;
    use oauth_mail_proxy::app_passwords::{self, AppPasswords, MAX_PER_ACCOUNT};
    let dir = tempfile::tempdir().unwrap();
    let alice_pw = oauth_mail_proxy::secret::random_token(12);
    let bob_pw = oauth_mail_proxy::secret::random_token(12);
    let config = cost_config(dir.path(), &alice_pw, &bob_pw);
    let config = oauth_mail_proxy::config::Config::load(&config).unwrap();
    let state = &config.proxy.state_dir;
    let app_pws: Vec<_> = (0..MAX_PER_ACCOUNT)
        .map(|i| app_passwords::add(state, "bob@example.com", &format!("app{i}")).unwrap())
        .collect();
    let accounts = Accounts::new(config.accounts.clone())
        .with_app_passwords(AppPasswords::in_state_dir(state));
    let wrong = oauth_mail_proxy::secret::random_token(12);

    let cost = async |user: &str, pw: &str| {
        let before = accounts.argon2_checks();
        let ok = accounts.authenticate(&creds(user, pw)).await.is_some();
        (ok, accounts.argon2_checks() - before)
    };
    assert_eq!(
        cost("nobody@example.com", &wrong).await,
        (false, 1),
        "unknown user"
    );
    assert_eq!(cost(USER, &wrong).await, (false, 1), "no app passwords");
    assert_eq!(
        cost("bob@example.com", &wrong).await,
        (false, 1),
        "16 app passwords"
    );
    // Another account's app password is just a wrong password.
    let last = secrecy::ExposeSecret::expose_secret(&app_pws[MAX_PER_ACCOUNT - 1]).to_string();
    assert_eq!(cost(USER, &last).await, (false, 1));
    // The real passwords work, at the same cost; a repeat comes from the verdict cache.
    assert_eq!(
        cost("bob@example.com", &last).await,
        (true, 1),
        "last app password"
    );
    assert_eq!(cost("bob@example.com", &last).await, (true, 0), "cached");
    assert_eq!(cost("bob@example.com", &bob_pw).await, (true, 1));
    assert_eq!(cost(USER, &alice_pw).await, (true, 1));
    // Failures are never cached.
    assert_eq!(cost("bob@example.com", &wrong).await, (false, 1));
    // A revoked app password stops working at once, cache or not.
    app_passwords::revoke(
        state,
        "bob@example.com",
        &format!("app{}", MAX_PER_ACCOUNT - 1),
    )
    .unwrap();
    assert_eq!(cost("bob@example.com", &last).await, (false, 1), "revoked");
}
