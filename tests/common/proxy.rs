//! Starting the proxy in tests: in-process on port 0 (`TestProxy`), or the real
//! binary as a child process (`ProxyProcess`), plus a counting TCP forwarder that
//! shows whether anything reached the upstream.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::listener::Server;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// One `[[listener]]` of a test config.
pub struct ListenerSpec {
    pub protocol: &'static str,
    /// An address listed before `upstream` (to test failover to the alternate).
    pub alternate_first: Option<SocketAddr>,
    pub tls: &'static str,
    pub upstream: SocketAddr,
    pub upstream_tls: &'static str,
    pub upstream_ca: Option<PathBuf>,
}

/// The account of a test config.
pub struct AccountSpec<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub authorize_url: &'a str,
    pub token_url: &'a str,
    pub mechanism: &'a str,
    /// Raw TOML lines appended to the `[[account]]` (e.g. `flow = "device_code"`).
    pub extra: &'a str,
}

/// Writes a config file into `dir` and returns its path. Listeners bind port 0.
pub fn write_config(dir: &Path, listeners: &[ListenerSpec], accounts: &[AccountSpec]) -> PathBuf {
    let mut s = String::new();
    s.push_str(&format!(
        "[proxy]\nstate_dir = \"{}\"\nauth_failure_delay = \"200ms\"\nrefresh_margin = \"1s\"\n\n",
        dir.join("state").display()
    ));
    for l in listeners {
        // Upstream by name "localhost" when TLS is verified (the test cert has
        // that SAN), by IP otherwise.
        let host = if l.upstream_tls == "none" {
            l.upstream.ip().to_string()
        } else {
            "localhost".to_string()
        };
        let mut upstreams = Vec::new();
        if let Some(first) = l.alternate_first {
            upstreams.push(format!("\"{host}:{}\"", first.port()));
        }
        upstreams.push(format!("\"{host}:{}\"", l.upstream.port()));
        s.push_str(&format!(
            "[[listener]]\nprotocol = \"{}\"\nbind = \"127.0.0.1:0\"\ntls = \"{}\"\nupstream = [{}]\nupstream_tls = \"{}\"\n",
            l.protocol,
            l.tls,
            upstreams.join(", "),
            l.upstream_tls
        ));
        if let Some(ca) = &l.upstream_ca {
            s.push_str(&format!("upstream_ca = \"{}\"\n", ca.display()));
        }
        s.push('\n');
    }
    for a in accounts {
        s.push_str(&format!(
            "[[account]]\nusername = \"{}\"\npassword_hash = \"{}\"\nprovider = \"custom\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nscopes = [\"mail\"]\nmechanism = \"{}\"\n\n",
            a.username, a.password_hash, a.client_id, a.client_secret, a.authorize_url, a.token_url, a.mechanism
        ));
        if !a.extra.is_empty() {
            s.truncate(s.len() - 1);
            s.push_str(a.extra.trim_end());
            s.push_str("\n\n");
        }
    }
    let path = dir.join("proxy.toml");
    std::fs::write(&path, s).unwrap();
    path
}

/// A proxy running in this process.
pub struct TestProxy {
    pub addrs: Vec<SocketAddr>,
    pub config: Config,
    shutdown: CancellationToken,
    force_close: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl TestProxy {
    pub async fn start(config_path: &Path) -> TestProxy {
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let config = Config::load(config_path).expect("test config is valid");
        let server = Server::bind(config.clone()).await.expect("proxy binds");
        let addrs = server.local_addrs();
        let shutdown = CancellationToken::new();
        let force_close = server.force_close_token();
        let task = tokio::spawn(server.run(shutdown.clone()));
        TestProxy {
            addrs,
            config,
            shutdown,
            force_close,
            task,
        }
    }

    /// Stops the proxy; spliced sessions are closed at once (no drain).
    pub async fn stop(self) {
        self.force_close.cancel();
        self.shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.task).await;
    }
}

/// A TCP forwarder that counts the connections it accepted.
pub struct CountingForwarder {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingForwarder {
    pub async fn start(target: SocketAddr) -> CountingForwarder {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let c = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut down, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
            }
        });
        CountingForwarder {
            addr,
            connections,
            task,
        }
    }

    pub fn count(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for CountingForwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs tests/clients/imap_fetch.py; returns (exit code, stdout).
pub async fn python_imap(args: &[&str], secret: &str) -> (i32, String) {
    python_client("imap_fetch.py", args, "IMAP_SECRET", secret).await
}

/// Runs tests/clients/pop3_fetch.py; returns (exit code, stdout).
pub async fn python_pop3(args: &[&str], secret: &str) -> (i32, String) {
    python_client("pop3_fetch.py", args, "POP3_SECRET", secret).await
}

/// Runs tests/clients/smtp_send.py; returns (exit code, stdout).
pub async fn python_smtp(args: &[&str], secret: &str) -> (i32, String) {
    python_client("smtp_send.py", args, "SMTP_SECRET", secret).await
}

/// Runs one of the Python clients in tests/clients with its secret in the
/// environment (never on the command line); returns (exit code, stdout).
async fn python_client(
    script: &str,
    args: &[&str],
    secret_env: &str,
    secret: &str,
) -> (i32, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(script);
    let out = tokio::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .env(secret_env, secret)
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        eprintln!("{} stderr: {stderr}", script.display());
    }
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
