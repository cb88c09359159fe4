//! `oauth-mail-proxy demo`: everything on loopback, in one process, so a newcomer
//! sees a legacy login go through the proxy in a minute.
//!
//! It starts the test authorization server and a small XOAUTH2-only IMAP server,
//! writes a config, runs the real authorization-code + PKCE login (visiting the URL
//! as a browser would), starts the proxy, and logs in through it with a plain
//! `LOGIN`, printing the exchange.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::authserver::{AuthServer, AuthServerConfig};
use crate::config::Config;
use crate::listener::Server;
use crate::oauth::{LoginOptions, TokenStore, UrlSink};
use crate::testkit::{MiniImap, MiniImapConfig};

/// The demo account and its local password (this is a demo: both are printed).
pub const DEMO_USER: &str = "demo@example.com";
pub const DEMO_PASSWORD: &str = "demo";

#[derive(Debug, thiserror::Error)]
#[error("demo: {0}")]
pub struct DemoError(String);

fn err(what: &str) -> impl FnOnce(String) -> DemoError + '_ {
    move |e| DemoError(format!("{what}: {e}"))
}

pub struct DemoOptions {
    /// Where the proxy listens.
    pub bind: SocketAddr,
    /// Exit after the scripted login instead of serving until Ctrl-C.
    pub once: bool,
}

fn demo_messages() -> Arc<Vec<Bytes>> {
    let m1 = "From: Ada <ada@example.com>\r\nTo: demo@example.com\r\nSubject: Hello through oauth-mail-proxy\r\n\r\nYour legacy client logged in with a password;\r\nthe server only accepts OAuth 2.0. It worked.\r\n";
    let m2 = "From: Grace <grace@example.com>\r\nTo: demo@example.com\r\nSubject: Second message\r\n\r\nTry: curl imap://127.0.0.1:1143/INBOX;MAILINDEX=2 -u demo@example.com:demo\r\n";
    Arc::new(vec![Bytes::from(m1), Bytes::from(m2)])
}

fn write_config(dir: &Path, bind: SocketAddr, upstream: SocketAddr, auth: &AuthServer) -> PathBuf {
    let c = auth.config();
    let hash = crate::accounts::hash_password(&SecretString::from(DEMO_PASSWORD));
    let text = format!(
        r#"# Written by `oauth-mail-proxy demo`.
[proxy]
state_dir = "state"

[[listener]]
protocol = "imap"
bind = "{bind}"
tls = "none"
upstream = "{upstream}"
upstream_tls = "none"

[[account]]
username = "{DEMO_USER}"
password_hash = "{hash}"
provider = "custom"
client_id = "{id}"
client_secret = "{secret}"
authorize_url = "{authorize}"
token_url = "{token}"
scopes = ["mail"]
"#,
        id = c.client_id,
        secret = c.client_secret,
        authorize = auth.authorize_url(),
        token = auth.token_url(),
    );
    let path = dir.join("oauth-mail-proxy.toml");
    crate::private_file::write_private_file(&path, text.as_bytes()).expect("temp dir is writable");
    path
}

/// Runs the demo until `shutdown` (or, with `once`, until the scripted login is done).
pub async fn run(opts: DemoOptions, shutdown: CancellationToken) -> Result<(), DemoError> {
    let dir = tempfile::tempdir().map_err(|e| err("temp dir")(e.to_string()))?;
    let auth_cfg = AuthServerConfig {
        default_user: DEMO_USER.into(),
        ..AuthServerConfig::generated()
    };
    let auth = AuthServer::start(([127, 0, 0, 1], 0).into(), auth_cfg)
        .await
        .map_err(|e| err("authorization server")(e.to_string()))?;
    let upstream = MiniImap::start(
        ([127, 0, 0, 1], 0).into(),
        MiniImapConfig {
            validate: auth.validator(),
            messages: demo_messages(),
            tls: None,
        },
    )
    .await
    .map_err(|e| err("local IMAP server")(e.to_string()))?;
    println!(
        "1. Test OAuth 2.0 authorization server: {}",
        auth.authorize_url()
    );
    println!(
        "   Local IMAP server accepting only XOAUTH2/OAUTHBEARER: {}",
        upstream.addr()
    );

    let path = write_config(dir.path(), opts.bind, upstream.addr(), &auth);
    let config = Config::load(&path).map_err(|e| err("config")(e.to_string()))?;
    println!("   Config: {}", path.display());

    login(&config).await?;

    let server = Server::bind(config)
        .await
        .map_err(|e| err("proxy")(e.to_string()))?;
    let addr = server.local_addrs()[0];
    let stop = CancellationToken::new();
    let proxy = tokio::spawn(server.run(stop.clone()));
    println!("3. Proxy listening on {addr}; a legacy client logs in with LOGIN:");
    let result = scripted_client(addr).await;
    println!(
        "   The upstream saw {} OAuth login(s) and no password.",
        upstream.logins()
    );
    if result.is_ok() && !opts.once {
        println!("\nTry it yourself (Ctrl-C ends the demo):");
        println!("  curl -v 'imap://{addr}/INBOX;MAILINDEX=1' -u {DEMO_USER}:{DEMO_PASSWORD}");
        println!(
            "  python3 -c \"import imaplib; m=imaplib.IMAP4('{}',{}); m.login('{DEMO_USER}','{DEMO_PASSWORD}'); print(m.select('INBOX'))\"",
            addr.ip(),
            addr.port()
        );
        shutdown.cancelled().await;
    }
    stop.cancel();
    let _ = proxy.await;
    upstream.shutdown().await;
    auth.shutdown().await;
    result
}

/// The real authorization-code + PKCE flow; the demo plays the browser.
async fn login(config: &Config) -> Result<(), DemoError> {
    let account = &config.accounts[0];
    let store =
        TokenStore::open(&config.proxy.state_dir).map_err(|e| err("token store")(e.to_string()))?;
    let http =
        crate::oauth::client::http_client().map_err(|e| err("HTTP client")(e.to_string()))?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = LoginOptions {
        open_browser: false,
        timeout: Duration::from_secs(30),
        redirect_port: 0,
        url_sink: UrlSink::Channel(tx),
        ..Default::default()
    };
    let acc = account.clone();
    let (s2, h2) = (store.clone(), http.clone());
    let flow =
        tokio::spawn(
            async move { crate::oauth::login_authorization_code(&acc, &s2, &h2, opts).await },
        );
    let url = rx
        .recv()
        .await
        .ok_or_else(|| DemoError("login flow ended early".into()))?;
    println!("2. `oauth-mail-proxy login {DEMO_USER}`: authorization URL (PKCE S256, state):");
    println!("   {url}");
    // A browser follows the redirect back to the proxy's loopback listener.
    let browser = reqwest::Client::builder()
        .build()
        .map_err(|e| err("browser")(e.to_string()))?;
    browser
        .get(url.as_str())
        .send()
        .await
        .map_err(|e| err("visiting the authorization URL")(e.to_string()))?;
    flow.await
        .map_err(|e| err("login task")(e.to_string()))?
        .map_err(|e| err("login")(e.to_string()))?;
    println!(
        "   Tokens received and stored encrypted in {}",
        store.dir().display()
    );
    Ok(())
}

/// A minimal legacy client: LOGIN, SELECT, FETCH, LOGOUT, printing the exchange.
async fn scripted_client(addr: SocketAddr) -> Result<(), DemoError> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| err("connect")(e.to_string()))?;
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    read_until(&mut r, "").await?;
    let steps = [
        (
            "a1",
            format!("a1 LOGIN {DEMO_USER} {DEMO_PASSWORD}"),
            format!("a1 LOGIN {DEMO_USER} ****"),
        ),
        ("a2", "a2 SELECT INBOX".to_string(), String::new()),
        ("a3", "a3 FETCH 1 BODY[]".to_string(), String::new()),
        ("a4", "a4 LOGOUT".to_string(), String::new()),
    ];
    for (tag, cmd, shown) in steps {
        println!("   C: {}", if shown.is_empty() { &cmd } else { &shown });
        w.write_all(format!("{cmd}\r\n").as_bytes())
            .await
            .map_err(|e| err("write")(e.to_string()))?;
        let done = read_until(&mut r, &format!("{tag} ")).await?;
        if !done.starts_with(&format!("{tag} OK")) {
            return Err(DemoError(format!("unexpected reply: {}", done.trim_end())));
        }
    }
    Ok(())
}

/// Reads and prints lines until one starts with `tag` (any line when `tag` is empty).
async fn read_until(
    r: &mut (impl AsyncBufReadExt + Unpin),
    tag: &str,
) -> Result<String, DemoError> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = r
            .read_line(&mut line)
            .await
            .map_err(|e| err("read")(e.to_string()))?;
        if n == 0 {
            return Err(DemoError("proxy closed the connection".into()));
        }
        println!("   S: {}", line.trim_end());
        if tag.is_empty() || line.starts_with(tag) {
            return Ok(line);
        }
    }
}
