//! The command line, end to end: the real binary runs as a child process against the
//! test authorization server (and, for `serve`, a real Dovecot).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::process::{self, Finished, ServeProcess};
use common::proxy::{AccountSpec, ListenerSpec, write_config};
use common::{Dovecot, ImapClient};
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::oauth::{TokenRecord, TokenStore};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Child;
use tokio::task::JoinHandle;
use url::Url;

const USER: &str = "alice@example.com";
const WAIT: Duration = Duration::from_secs(20);

/// An authorization server and a config with one account using it (no listeners
/// unless a test adds them).
struct Fixture {
    auth: AuthServer,
    dir: tempfile::TempDir,
    password: String,
    hash: String,
}

impl Fixture {
    async fn start() -> Fixture {
        common::install_crypto_provider();
        let auth = AuthServer::start(
            "127.0.0.1:0".parse().unwrap(),
            AuthServerConfig::generated(),
        )
        .await
        .unwrap();
        let password = oauth_mail_proxy::secret::random_token(12);
        let hash = oauth_mail_proxy::accounts::hash_password(&SecretString::from(password.clone()));
        Fixture {
            auth,
            dir: tempfile::tempdir().unwrap(),
            password,
            hash,
        }
    }

    fn account(&self) -> AccountSpec<'_> {
        let c = self.auth.config();
        AccountSpec {
            username: USER,
            password_hash: &self.hash,
            client_id: &c.client_id,
            client_secret: &c.client_secret,
            authorize_url: Box::leak(self.auth.authorize_url().into_boxed_str()),
            token_url: Box::leak(self.auth.token_url().into_boxed_str()),
            mechanism: "xoauth2",
            extra: "",
        }
    }

    fn config(&self, listeners: &[ListenerSpec]) -> PathBuf {
        write_config(self.dir.path(), listeners, &[self.account()])
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn store(&self) -> TokenStore {
        TokenStore::open(&self.state_dir()).unwrap()
    }

    /// Stores fresh tokens for USER, as `login` would; `needs_login` marks them as
    /// rejected.
    fn store_tokens(&self, lifetime: Duration, needs_login: Option<&str>) -> (String, String) {
        self.auth.set_token_lifetime(lifetime);
        let (access, refresh) = self.auth.mint_tokens(USER);
        let now = oauth_mail_proxy::oauth::outcome::unix_now();
        let rec = TokenRecord {
            account: USER.into(),
            access_token: SecretString::from(access.clone()),
            refresh_token: Some(SecretString::from(refresh.clone())),
            expires_at: Some(now + lifetime.as_secs()),
            scopes: vec!["mail".into()],
            obtained_at: now,
            last_refresh: None,
            needs_login: needs_login.map(str::to_owned),
            refresh_expires_at: None,
        };
        self.store().save(USER, &rec).unwrap();
        (access, refresh)
    }
}

/// A running `login --no-browser` and the URL it printed.
struct Login {
    child: Child,
    url: Url,
    /// The rest of stdout after the URL line, read to EOF.
    stdout_rest: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl Login {
    /// `oauth-mail-proxy --config CONFIG [global] login ACCOUNT --no-browser --timeout T`
    async fn start(config: &Path, global: &[&str], account: &str, timeout: &str) -> Login {
        let mut args = vec!["--config", config.to_str().unwrap()];
        args.extend_from_slice(global);
        args.extend(["login", account, "--no-browser", "--timeout", timeout]);
        let mut child = process::command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn login");
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s).await;
            s
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        tokio::time::timeout(WAIT, stdout.read_line(&mut first))
            .await
            .expect("no URL line on stdout in time")
            .expect("read stdout");
        let line = first
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("first stdout line is not a complete line: {first:?}"));
        let url = Url::parse(line)
            .unwrap_or_else(|e| panic!("first stdout line is not a URL alone ({e}): {line:?}"));
        let stdout_rest = tokio::spawn(async move {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s).await;
            s
        });
        Login {
            child,
            url,
            stdout_rest,
            stderr,
        }
    }

    /// Waits for the process to exit; returns (success, rest of stdout, stderr).
    async fn finish(mut self) -> (bool, String, String) {
        let status = process::wait_exit(&mut self.child, WAIT)
            .await
            .expect("login did not exit in time");
        let rest = self.stdout_rest.await.unwrap();
        let stderr = self.stderr.await.unwrap();
        (status.success(), rest, stderr)
    }
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The "browser": follows the authorization server's 302 to the loopback listener.
async fn browse(url: &Url) -> (u16, String) {
    let resp = tokio::time::timeout(WAIT, reqwest::get(url.as_str()))
        .await
        .expect("browser request timed out")
        .expect("browser request failed");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_no_browser_prints_url_and_stores_tokens() {
    let f = Fixture::start().await;
    let config = f.config(&[]);
    let login = Login::start(&config, &["--log", "trace"], USER, "30s").await;
    let url = login.url.clone();

    assert!(url.as_str().starts_with(&f.auth.authorize_url()), "{url}");
    assert_eq!(param(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(param(&url, "code_challenge").is_some_and(|c| c.len() >= 43));
    assert!(param(&url, "state").is_some_and(|s| s.len() >= 32), "{url}");
    assert_eq!(
        param(&url, "client_id").as_deref(),
        Some(f.auth.config().client_id.as_str())
    );
    assert_eq!(param(&url, "login_hint").as_deref(), Some(USER));
    assert_eq!(param(&url, "scope").as_deref(), Some("mail"));
    let redirect = Url::parse(&param(&url, "redirect_uri").unwrap()).unwrap();
    assert_eq!(redirect.scheme(), "http");
    assert_eq!(redirect.host_str(), Some("127.0.0.1"));
    assert!(redirect.port().is_some_and(|p| p != 0), "{redirect}");
    assert_eq!(redirect.path(), "/");

    // The browser, one redirect at a time, to see the authorization code.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = tokio::time::timeout(WAIT, http.get(url.as_str()).send())
        .await
        .expect("authorization request timed out")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location.as_str().starts_with(redirect.as_str()),
        "{location}"
    );
    let code = param(&location, "code").expect("an authorization code");
    assert_eq!(param(&location, "state"), param(&url, "state"));
    let (status, page) = browse(&location).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Authorization received"), "{page}");

    let (ok, rest, stderr) = login.finish().await;
    assert!(ok, "login failed:\n{stderr}");
    assert_eq!(rest, "", "stdout holds the URL line alone");
    assert!(
        stderr.contains(&format!("Tokens for {USER} stored")),
        "{stderr}"
    );
    assert_eq!(f.auth.grants("authorization_code"), 1);

    let rec = f.store().load(USER).unwrap().expect("a token record");
    assert!(rec.refresh_token.is_some() && rec.needs_login.is_none());
    assert!(!rec.access_token.expose_secret().is_empty());
    assert_eq!(rec.scopes, vec!["mail"]);
    // Nothing the process printed, at trace level, holds a secret of the login.
    assert!(stderr.contains("login complete; tokens saved"), "{stderr}");
    assert!(
        stderr.contains("hyper"),
        "dependencies log at trace level:\n{stderr}"
    );
    for (name, secret) in [
        ("access token", rec.access_token.expose_secret()),
        (
            "refresh token",
            rec.refresh_token.as_ref().unwrap().expose_secret(),
        ),
        ("authorization code", code.as_str()),
        ("client secret", f.auth.config().client_secret.as_str()),
    ] {
        assert!(
            !stderr.contains(secret) && !rest.contains(secret),
            "the {name} was printed:\n{stderr}"
        );
    }

    let st = process::run_with_config(&config, &["status"]).await;
    assert!(st.success(), "{st:?}");
    let line = st
        .stdout
        .lines()
        .find(|l| l.starts_with(USER))
        .unwrap_or_else(|| panic!("no status line for {USER}: {st:?}"));
    // ACCOUNT FLOW TOKEN VALID-UNTIL REFRESH-TOKEN LAST-REFRESH NEEDS-LOGIN
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[1..3], ["authorization_code", "yes"], "{line}");
    assert_eq!(fields[4..], ["yes", "-", "no"], "{line}");
    assert!(!st.stdout.contains(rec.access_token.expose_secret()));
    f.auth.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_denied_fails_and_stores_nothing() {
    let f = Fixture::start().await;
    f.auth.set_deny(true);
    let login = Login::start(&f.config(&[]), &[], USER, "30s").await;
    let (status, page) = browse(&login.url.clone()).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("denied"), "{page}");
    let (ok, _, stderr) = login.finish().await;
    assert!(!ok, "a denied login must fail:\n{stderr}");
    assert!(
        stderr.contains("error: login for alice@example.com failed: authorization was denied"),
        "{stderr}"
    );
    assert_eq!(f.auth.token_requests(), 0);
    assert!(f.store().load(USER).unwrap().is_none());
    f.auth.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_times_out_without_a_redirect() {
    let f = Fixture::start().await;
    let login = Login::start(&f.config(&[]), &[], USER, "1s").await;
    let (ok, _, stderr) = login.finish().await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("no redirect from the browser within 1s"),
        "{stderr}"
    );
    assert!(f.store().load(USER).unwrap().is_none());
    f.auth.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_for_an_unknown_account_names_it() {
    let f = Fixture::start().await;
    let out = process::run_with_config(
        &f.config(&[]),
        &[
            "login",
            "mallory@example.com",
            "--no-browser",
            "--timeout",
            "5s",
        ],
    )
    .await;
    assert!(!out.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "no URL is printed: {out:?}");
    assert!(
        out.stderr.contains("mallory@example.com") && out.stderr.contains("no [[account]]"),
        "{out:?}"
    );
    assert_eq!(f.auth.token_requests(), 0);
    f.auth.shutdown().await;
}

async fn hash_password(input: &str) -> Finished {
    process::run(process::command(&["hash-password"]), input.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_password_output_is_accepted_by_the_account_check() {
    use oauth_mail_proxy::accounts::{Accounts, check_phc};
    use oauth_mail_proxy::proto::Credentials;

    let password = "correct horse battery staple";
    let out = hash_password(&format!("{password}\n")).await;
    assert!(out.success(), "{out:?}");
    let hash = out.stdout.trim_end();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    check_phc(hash).unwrap();
    assert!(!out.stdout.contains(password) && !out.stderr.contains(password));
    // A CRLF line ending is not part of the password; the salt differs each time.
    let again = hash_password(&format!("{password}\r\n")).await;
    assert!(again.success(), "{again:?}");
    assert_ne!(again.stdout, out.stdout);

    // Both hashes, put in a config, accept the password and nothing else.
    let f = Fixture::start().await;
    for h in [hash, again.stdout.trim_end()] {
        let mut spec = f.account();
        spec.password_hash = h;
        let path = write_config(f.dir.path(), &[], &[spec]);
        let config = oauth_mail_proxy::config::Config::load(&path).unwrap();
        let accounts = Accounts::new(config.accounts);
        let creds = |pw: &str| Credentials {
            authzid: None,
            username: USER.into(),
            password: SecretString::from(pw.to_string()),
        };
        assert!(accounts.authenticate(&creds(password)).await.is_some());
        assert!(accounts.authenticate(&creds("wrong")).await.is_none());
        assert!(
            accounts
                .authenticate(&creds(&format!("{password}\n")))
                .await
                .is_none()
        );
    }
    f.auth.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_password_refuses_an_empty_password() {
    for input in ["", "\n", "\r\n"] {
        let out = hash_password(input).await;
        assert!(!out.success(), "{input:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{input:?}: {out:?}");
        assert!(out.stderr.contains("empty password"), "{input:?}: {out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reports_file_line_and_key() {
    let f = Fixture::start().await;
    let good = f.config(&[ListenerSpec {
        protocol: "imap",
        alternate_first: None,
        tls: "none",
        upstream: SocketAddr::from(([127, 0, 0, 1], 10143)),
        upstream_tls: "none",
        upstream_ca: None,
    }]);
    let out = process::run_with_config(&good, &["check-config"]).await;
    assert!(out.success(), "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "{}: ok (1 listener(s), 1 account(s))",
            good.display()
        )),
        "{out:?}"
    );

    // Line 7 is the listener's bind (after four [proxy] lines and a blank one).
    let text = std::fs::read_to_string(&good).unwrap();
    assert_eq!(
        text.lines().nth(7),
        Some("bind = \"127.0.0.1:0\""),
        "{text}"
    );
    let bad = f.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replace("bind = \"127.0.0.1:0\"", "bind = \"localhost:1143\""),
    )
    .unwrap();
    let out = process::run_with_config(&bad, &["check-config"]).await;
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("error: {}:8: `listener.bind`", bad.display())),
        "{out:?}"
    );

    // A TOML syntax error names the file and the line too.
    let syntax = f.dir.path().join("syntax.toml");
    std::fs::write(&syntax, "[proxy]\nstate_dir = \"s\"\nrefresh_margin = \n").unwrap();
    let out = process::run_with_config(&syntax, &["check-config"]).await;
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains(&syntax.display().to_string()) && out.stderr.contains("line 3"),
        "{out:?}"
    );

    // $OAUTH_MAIL_PROXY_CONFIG is used without --config (run from an empty directory,
    // so ./oauth-mail-proxy.toml cannot be picked up instead).
    let cwd = tempfile::tempdir().unwrap();
    for (path, ok) in [(&good, true), (&bad, false)] {
        let mut cmd = process::command(&["check-config"]);
        cmd.env("OAUTH_MAIL_PROXY_CONFIG", path)
            .current_dir(cwd.path());
        let out = process::run(cmd, b"").await;
        assert_eq!(out.success(), ok, "{out:?}");
        let shown = if ok { &out.stdout } else { &out.stderr };
        assert!(shown.contains(&path.display().to_string()), "{out:?}");
    }
    // Without either, the default file name is looked for in the current directory.
    let mut cmd = process::command(&["check-config"]);
    cmd.current_dir(cwd.path());
    let out = process::run(cmd, b"").await;
    assert!(!out.success(), "{out:?}");
    assert!(out.stderr.contains("oauth-mail-proxy.toml"), "{out:?}");
    f.auth.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_needs_login_and_missing_tokens() {
    let f = Fixture::start().await;
    let config = f.config(&[]);
    let out = process::run_with_config(&config, &["status"]).await;
    assert!(out.success(), "{out:?}");
    let row = |out: &Finished| {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(USER))
            .unwrap_or_default();
        line.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // No token: TOKEN no, NEEDS LOGIN yes.
    let r = row(&out);
    assert_eq!(
        (r[2].as_str(), r.last().unwrap().as_str()),
        ("no", "yes"),
        "{out:?}"
    );

    let (access, refresh) = f.store_tokens(
        Duration::from_secs(3600),
        Some("refresh token rejected: invalid_grant"),
    );
    let out = process::run_with_config(&config, &["status"]).await;
    assert!(out.success(), "{out:?}");
    let r = row(&out);
    assert_eq!(
        (r[2].as_str(), r.last().unwrap().as_str()),
        ("yes", "yes"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "{USER}: last error: refresh token rejected: invalid_grant"
        )),
        "{out:?}"
    );
    assert!(!out.stdout.contains(&access) && !out.stdout.contains(&refresh));
    f.auth.shutdown().await;
}

/// `serve` as a real process: a client logs in through it to Dovecot; SIGTERM ends it
/// with exit status 0 promptly, closing a session that is still spliced and one that
/// has not logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_proxies_and_exits_cleanly_on_sigterm() {
    let f = Fixture::start().await;
    let dovecot = Dovecot::start(&f.auth).await;
    dovecot.seed_message(
        USER,
        b"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: one\r\n\r\nFirst message.\r\n",
    );
    f.store_tokens(Duration::from_secs(3600), None);
    let listener = ListenerSpec {
        protocol: "imap",
        alternate_first: None,
        tls: "none",
        upstream: SocketAddr::from(([127, 0, 0, 1], dovecot.imaps_port)),
        upstream_tls: "implicit",
        upstream_ca: Some(dovecot.ca_path().to_path_buf()),
    };
    let write = |port: u16| {
        let path = f.config(std::slice::from_ref(&listener));
        let text = std::fs::read_to_string(&path).unwrap();
        let patched = text.replace(
            "bind = \"127.0.0.1:0\"",
            &format!("bind = \"127.0.0.1:{port}\""),
        );
        assert_ne!(patched, text);
        // No drain time: spliced sessions are closed at once (tests/reload.rs
        // covers draining).
        let patched = patched.replacen("[proxy]\n", "[proxy]\ndrain_timeout = \"0s\"\n", 1);
        std::fs::write(&path, patched).unwrap();
        path
    };
    let log = f.dir.path().join("serve.log");
    let proxy = ServeProcess::start(write, &[], &log).await;

    let mut c = ImapClient::connect(proxy.port).await;
    let r = c.command(&format!("LOGIN {USER} \"{}\"", f.password)).await;
    assert!(r.is_ok(), "{r:?}\n{}", proxy.output());
    assert_eq!(c.select("INBOX").await, 1);
    let body = c.fetch_body(1).await;
    assert!(body.ends_with(b"First message.\r\n"));
    c.logout().await;

    // A second session stays logged in across the SIGTERM.
    let mut open = ImapClient::connect(proxy.port).await;
    let r = open
        .command(&format!("LOGIN {USER} \"{}\"", f.password))
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(open.command("NOOP").await.is_ok());

    // And a third is connected but has not logged in yet.
    let mut idle = ImapClient::connect(proxy.port).await;

    let port = proxy.port;
    let (status, output) = proxy.terminate().await;
    assert!(status.success(), "exit status {status}:\n{output}");
    assert!(output.contains("logged in; splicing"), "{output}");
    assert!(output.contains("shutting down"), "{output}");
    assert!(open.conn.closed().await, "the spliced session was closed");
    assert!(idle.conn.closed().await, "the pre-login session was closed");
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the listener is closed"
    );
    f.auth.shutdown().await;
}
