//! Every way to get a token, against the project's test authorization server, each
//! ending with a real IMAP login through the proxy to Dovecot: device code (approved
//! after pending, slow_down, denied, expired), authorization code with a pasted
//! redirect address (library and binary), a fixed `redirect_uri` with `login_hint` and
//! `prompt`, client credentials fetched again on expiry, and `refresh_url`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::ImapClient;
use common::process;
use common::proxy::{ListenerSpec, TestProxy, write_config};
use common::rig::{HOUR, Rig, USER};
use oauth_mail_proxy::config::{Account, Config};
use oauth_mail_proxy::oauth::{
    DevicePrompt, DeviceSink, FlowError, LoginOptions, TokenRecord, TokenStore, UrlSink, client,
    login_account,
};
use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use url::Url;

const WAIT: Duration = Duration::from_secs(30);

/// A rig, the config written for its account with `extra` keys, and that account.
struct Setup {
    rig: Rig,
    path: PathBuf,
    account: Account,
    store: TokenStore,
}

fn listener(rig: &Rig) -> ListenerSpec {
    rig.listener("imap", "none", "implicit")
}

async fn setup(extra: &str) -> Setup {
    let rig = Rig::start().await;
    setup_with(rig, extra)
}

fn setup_with(rig: Rig, extra: &str) -> Setup {
    let mut spec = rig.account("xoauth2");
    spec.extra = extra;
    let path = write_config(rig.dir.path(), &[listener(&rig)], &[spec]);
    let config = Config::load(&path).expect("test config is valid");
    let account = config.account(USER).unwrap().clone();
    let store = TokenStore::open(&config.proxy.state_dir).unwrap();
    Setup {
        rig,
        path,
        account,
        store,
    }
}

impl Setup {
    async fn proxy(&self) -> TestProxy {
        TestProxy::start(&self.path).await
    }

    fn stored(&self) -> Option<TokenRecord> {
        self.store.load(USER).unwrap()
    }
}

/// `LOGIN` through the proxy; on success also SELECTs INBOX (the two seeded
/// messages) and logs out. Returns the tagged LOGIN response.
async fn imap_login(proxy: &TestProxy, password: &str) -> String {
    let mut c = ImapClient::connect(proxy.addrs[0].port()).await;
    let r = c.command(&format!("LOGIN {USER} \"{password}\"")).await;
    if r.is_ok() {
        assert_eq!(c.select("INBOX").await, 2);
        c.logout().await;
    }
    r.tagged
}

async fn assert_imap_ok(s: &Setup) {
    let proxy = s.proxy().await;
    let r = imap_login(&proxy, &s.rig.password).await;
    assert!(r.starts_with("OK"), "LOGIN through the proxy: {r}");
    proxy.stop().await;
}

async fn assert_imap_refused(s: &Setup) {
    let proxy = s.proxy().await;
    let r = imap_login(&proxy, &s.rig.password).await;
    assert!(r.starts_with("NO"), "LOGIN must fail without tokens: {r}");
    proxy.stop().await;
}

fn device_extra(rig: &Rig) -> &'static str {
    Box::leak(
        format!(
            "flow = \"device_code\"\ndevice_authorization_url = \"{}\"\n",
            rig.auth.device_url()
        )
        .into_boxed_str(),
    )
}

type LoginTask = tokio::task::JoinHandle<Result<TokenRecord, FlowError>>;

/// Starts the device-code login; returns it and the prompt it showed.
async fn start_device_login(s: &Setup, timeout: Duration) -> (LoginTask, DevicePrompt) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let opts = LoginOptions {
        open_browser: false,
        timeout,
        device_sink: DeviceSink::Channel(tx),
        ..Default::default()
    };
    let (account, store) = (s.account.clone(), s.store.clone());
    let task = tokio::spawn(async move {
        let http = client::http_client().unwrap();
        login_account(&account, &store, &http, opts, None::<&[u8]>).await
    });
    let prompt = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no device prompt in time")
        .expect("the flow ended before prompting");
    (task, prompt)
}

async fn finish(task: LoginTask) -> Result<TokenRecord, FlowError> {
    tokio::time::timeout(WAIT + WAIT, task)
        .await
        .expect("login did not end in time")
        .unwrap()
}

/// Waits until the server has answered at least `n` device-code polls.
async fn wait_polls(s: &Setup, n: u64) {
    let until = Instant::now() + WAIT;
    while s.rig.auth.device_polls().0 < n {
        assert!(Instant::now() < until, "the flow stopped polling");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_pending_then_approved() {
    let rig = Rig::start().await;
    rig.auth.set_device_interval(Duration::ZERO);
    let extra = device_extra(&rig);
    let s = setup_with(rig, extra);
    let (task, prompt) = start_device_login(&s, WAIT).await;
    assert_eq!(
        prompt.verification_uri.as_str(),
        format!("{}/verify", s.rig.auth.device_url())
    );
    let complete = prompt.verification_uri_complete.as_ref().unwrap();
    assert!(complete.as_str().contains(&prompt.user_code), "{complete}");
    assert_eq!(prompt.expires_in, Duration::from_secs(600));
    // The flow keeps polling while the user has not decided.
    wait_polls(&s, 2).await;
    assert!(s.stored().is_none());
    assert!(!s.rig.auth.approve_device("XXXX-XXXX", USER));
    assert!(s.rig.auth.approve_device(&prompt.user_code, USER));
    let rec = finish(task).await.unwrap();
    assert!(rec.refresh_token.is_some());
    assert_eq!(s.rig.auth.grants("device_code"), 1);
    assert_eq!(s.rig.auth.device_polls().1, 0, "no slow_down at interval 0");
    assert!(s.stored().is_some());
    assert_imap_ok(&s).await;
}

/// The verification page approves as the server's default user (the human demo).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_approved_on_the_verification_page() {
    let rig = Rig::start().await;
    rig.auth.set_device_interval(Duration::from_secs(1));
    let extra = device_extra(&rig);
    let s = setup_with(rig, extra);
    let (task, prompt) = start_device_login(&s, WAIT).await;
    let complete = prompt.verification_uri_complete.clone().unwrap();
    let page = reqwest::get(complete.as_str()).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("Approved"));
    finish(task).await.unwrap();
    assert_imap_ok(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_slow_down_adds_five_seconds() {
    let rig = Rig::start().await;
    rig.auth.set_device_interval(Duration::ZERO);
    rig.auth.force_device_slow_down(1);
    let extra = device_extra(&rig);
    let s = setup_with(rig, extra);
    let (task, prompt) = start_device_login(&s, WAIT).await;
    let started = Instant::now();
    assert!(s.rig.auth.approve_device(&prompt.user_code, USER));
    finish(task).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "slow_down must add 5 s to the interval ({:?})",
        started.elapsed()
    );
    let (polls, slow_downs) = s.rig.auth.device_polls();
    assert_eq!((polls, slow_downs), (2, 1));
    assert_imap_ok(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_denied() {
    let rig = Rig::start().await;
    rig.auth.set_device_interval(Duration::ZERO);
    let extra = device_extra(&rig);
    let s = setup_with(rig, extra);
    let (task, prompt) = start_device_login(&s, WAIT).await;
    wait_polls(&s, 1).await;
    assert!(s.rig.auth.deny_device(&prompt.user_code));
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, FlowError::Denied { .. }), "{err:?}");
    assert!(err.to_string().contains("denied"), "{err}");
    assert!(s.stored().is_none());
    assert_eq!(s.rig.auth.grants("device_code"), 0);
    assert_imap_refused(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_expired() {
    let rig = Rig::start().await;
    rig.auth.set_device_interval(Duration::ZERO);
    rig.auth.set_device_lifetime(Duration::from_secs(1));
    let extra = device_extra(&rig);
    let s = setup_with(rig, extra);
    let (task, prompt) = start_device_login(&s, WAIT).await;
    assert_eq!(prompt.expires_in, Duration::from_secs(1));
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, FlowError::DeviceExpired), "{err:?}");
    assert!(err.to_string().contains("expired"), "{err}");
    // Too late to approve.
    assert!(!s.rig.auth.approve_device(&prompt.user_code, USER));
    assert!(s.stored().is_none());
    assert_imap_refused(&s).await;
}

/// The authorization server's answer to `url` (the browser's first hop): the
/// address it redirects to.
async fn redirect_of(url: &Url) -> Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http.get(url.as_str()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let loc = resp.headers()["location"].to_str().unwrap();
    Url::parse(loc).unwrap()
}

fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Starts a manual login reading from a pipe; returns it, the URL and the pipe.
async fn start_manual(s: &Setup) -> (LoginTask, Url, tokio::io::DuplexStream) {
    let (url_tx, mut url_rx) = mpsc::unbounded_channel();
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let opts = LoginOptions {
        open_browser: false,
        timeout: WAIT,
        url_sink: UrlSink::Channel(url_tx),
        ..Default::default()
    };
    let (account, store) = (s.account.clone(), s.store.clone());
    let task = tokio::spawn(async move {
        let http = client::http_client().unwrap();
        login_account(&account, &store, &http, opts, Some(BufReader::new(theirs))).await
    });
    let url = tokio::time::timeout(WAIT, url_rx.recv())
        .await
        .unwrap()
        .expect("the flow ended before publishing the URL");
    (task, url, ours)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_paste_with_login_hint_and_prompt() {
    let s = setup("login_hint = \"alice@example.com\"\nprompt = \"consent\"\n").await;

    // A pasted address with another state is refused; nothing is exchanged.
    let (task, url, mut pipe) = start_manual(&s).await;
    let mut forged = redirect_of(&url).await;
    forged.set_query(Some("code=forged&state=not-the-state"));
    pipe.write_all(format!("\n{forged}\n").as_bytes())
        .await
        .unwrap();
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, FlowError::StateMismatch), "{err:?}");
    assert_eq!(s.rig.auth.token_requests(), 0);

    // Garbage and oversized lines are refused with a message.
    let (task, _url, mut pipe) = start_manual(&s).await;
    pipe.write_all(b"hello\n").await.unwrap();
    let err = finish(task).await.unwrap_err();
    assert!(matches!(err, FlowError::ManualInput(_)), "{err:?}");
    let (task, _url, mut pipe) = start_manual(&s).await;
    let long = vec![b'a'; oauth_mail_proxy::oauth::flows::MAX_PASTED_URL + 10];
    let writer = tokio::spawn(async move {
        let _ = pipe.write_all(&long).await;
        pipe
    });
    let err = finish(task).await.unwrap_err();
    assert!(err.to_string().contains("longer than"), "{err}");
    drop(writer);

    // The real paste.
    let (task, url, mut pipe) = start_manual(&s).await;
    assert_eq!(param(&url, "login_hint").as_deref(), Some(USER));
    assert_eq!(param(&url, "prompt").as_deref(), Some("consent"));
    let redirect = redirect_of(&url).await;
    assert!(
        redirect.as_str().starts_with("http://127.0.0.1:"),
        "{redirect}"
    );
    pipe.write_all(format!("  {redirect}\r\n").as_bytes())
        .await
        .unwrap();
    let rec = finish(task).await.unwrap();
    assert!(rec.refresh_token.is_some());
    assert_eq!(s.rig.auth.grants("authorization_code"), 1);

    // What the authorization server received.
    let reqs = s.rig.auth.authorize_requests();
    let last = reqs.last().unwrap();
    let get = |k: &str| last.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("login_hint"), Some(USER));
    assert_eq!(get("prompt"), Some("consent"));
    assert_imap_ok(&s).await;
}

/// `login --manual` through the real binary, the redirect address piped to stdin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_paste_through_the_binary() {
    let s = setup("").await;
    let args = [
        "--config",
        s.path.to_str().unwrap(),
        "login",
        USER,
        "--manual",
        "--timeout",
        "30s",
    ];
    let mut child = process::command(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = tokio::spawn(async move {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s).await;
        s
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(WAIT, stdout.read_line(&mut line))
        .await
        .expect("no URL on stdout in time")
        .unwrap();
    let url = Url::parse(line.trim_end()).expect("the URL alone on the first line");
    // The login hint defaults to the upstream user name.
    assert_eq!(param(&url, "login_hint").as_deref(), Some(USER));
    assert!(param(&url, "prompt").is_none());
    let redirect = redirect_of(&url).await;
    stdin
        .write_all(format!("{redirect}\n").as_bytes())
        .await
        .unwrap();
    let status = process::wait_exit(&mut child, WAIT)
        .await
        .expect("login did not exit in time");
    let stderr = stderr.await.unwrap();
    assert!(status.success(), "login --manual failed:\n{stderr}");
    assert!(stderr.contains("paste it here"), "{stderr}");
    let code = param(&redirect, "code").unwrap();
    assert!(!stderr.contains(&code), "the code must not be printed");
    let rec = s.stored().unwrap();
    assert!(!stderr.contains(rec.access_token.expose_secret()));
    assert_imap_ok(&s).await;
}

/// A fixed `redirect_uri` with a path: the loopback listener binds its port and
/// answers only on its path; `login_hint` defaults to upstream_username.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_redirect_uri_and_prompt() {
    let port = process::free_port();
    let extra = format!(
        "redirect_uri = \"http://localhost:{port}/oauth/callback\"\nprompt = \"select_account\"\n"
    );
    let s = setup(Box::leak(extra.into_boxed_str())).await;
    let (url_tx, mut url_rx) = mpsc::unbounded_channel();
    let opts = LoginOptions {
        open_browser: false,
        timeout: WAIT,
        url_sink: UrlSink::Channel(url_tx),
        ..Default::default()
    };
    let (account, store) = (s.account.clone(), s.store.clone());
    let task = tokio::spawn(async move {
        let http = client::http_client().unwrap();
        login_account(&account, &store, &http, opts, None::<&[u8]>).await
    });
    let url = tokio::time::timeout(WAIT, url_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        param(&url, "redirect_uri").unwrap(),
        format!("http://localhost:{port}/oauth/callback")
    );
    let redirect = redirect_of(&url).await;
    // The browser goes to localhost; reach the listener on 127.0.0.1.
    let mut wrong_path = redirect.clone();
    wrong_path.set_host(Some("127.0.0.1")).unwrap();
    let mut right = wrong_path.clone();
    wrong_path.set_path("/");
    assert_eq!(
        reqwest::get(wrong_path.as_str()).await.unwrap().status(),
        404
    );
    right.set_path("/oauth/callback");
    assert_eq!(reqwest::get(right.as_str()).await.unwrap().status(), 200);
    finish(task).await.unwrap();
    let reqs = s.rig.auth.authorize_requests();
    let last = reqs.last().unwrap();
    assert!(
        last.contains(&("login_hint".into(), USER.into())),
        "{last:?}"
    );
    assert!(
        last.contains(&("prompt".into(), "select_account".into())),
        "{last:?}"
    );
    assert_imap_ok(&s).await;
}

/// App-only tokens: `login` fetches one; the proxy fetches a new one whenever it
/// nears expiry (2 s tokens, 1 s margin), never reporting needs-login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_fetched_again_on_expiry() {
    let s = setup("flow = \"client_credentials\"\ntoken_scopes = [\"mail\", \"extra\"]\n").await;
    s.rig.auth.set_token_lifetime(Duration::from_secs(2));
    let http = client::http_client().unwrap();
    let rec = login_account(
        &s.account,
        &s.store,
        &http,
        LoginOptions::default(),
        None::<&[u8]>,
    )
    .await
    .unwrap();
    assert!(rec.refresh_token.is_none());
    assert_eq!(rec.scopes, ["mail", "extra"], "token_scopes were sent");
    assert_eq!(s.rig.auth.grants("client_credentials"), 1);

    let proxy = s.proxy().await;
    for i in 0..3 {
        let r = imap_login(&proxy, &s.rig.password).await;
        assert!(r.starts_with("OK"), "login {i}: {r}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let fetched = s.rig.auth.grants("client_credentials");
    assert!(fetched >= 3, "new tokens were fetched: {fetched}");
    assert_eq!(s.rig.auth.grants("refresh_token"), 0);
    let stored = s.stored().unwrap();
    assert!(stored.needs_login.is_none() && stored.refresh_token.is_none());
    proxy.stop().await;

    // With nothing stored at all, the proxy fetches by itself too.
    assert!(s.store.delete(USER).unwrap());
    assert_imap_ok(&s).await;
    assert!(s.rig.auth.grants("client_credentials") > fetched);
}

/// Refresh-token grants go to `refresh_url`; `token_url` is a dead port here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_goes_to_refresh_url() {
    let rig = Rig::start().await;
    let dead = format!("http://127.0.0.1:{}/token", process::free_port());
    let mut spec = rig.account("xoauth2");
    spec.token_url = Box::leak(dead.into_boxed_str());
    let extra = format!(
        "refresh_url = \"{}\"\ntoken_scopes = [\"mail\"]\n",
        rig.auth.token_url()
    );
    spec.extra = &extra;
    let path = write_config(rig.dir.path(), &[listener(&rig)], &[spec]);
    // Tokens that expire within the refresh margin: the first login refreshes.
    rig.store_tokens(Duration::from_secs(1));
    rig.auth.set_token_lifetime(HOUR);
    let proxy = TestProxy::start(&path).await;
    let r = imap_login(&proxy, &rig.password).await;
    assert!(r.starts_with("OK"), "{r}");
    assert_eq!(rig.auth.grants("refresh_token"), 1);
    proxy.stop().await;
}
