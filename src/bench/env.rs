//! Everything a run needs on loopback: the test authorization server and MiniImap
//! upstreams (plain and implicit TLS) on their own runtime ("bench-up" threads), and
//! the proxy as a child process (`oauth-mail-proxy serve`), so its CPU and memory are
//! its own.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::oauth::{TokenRecord, TokenStore};
use oauth_mail_proxy::testkit::{MiniImap, MiniImapConfig};
use secrecy::SecretString;
use tokio_rustls::rustls::ClientConfig;

pub const USER: &str = "bench@example.com";
pub const PASSWORD: &str = "bench-password-1";

pub struct Env {
    pub auth: AuthServer,
    pub imap: MiniImap,
    pub imaps: MiniImap,
    pub dir: tempfile::TempDir,
    /// Trusts the upstream's and the proxy's certificates.
    pub tls: Arc<ClientConfig>,
    upstream_ca: PathBuf,
    /// Runs the upstreams; dropped last.
    _rt: tokio::runtime::Runtime,
}

pub struct Proxy {
    pub child: Child,
    pub plain: SocketAddr,
    pub tls: SocketAddr,
}

impl Proxy {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn cpu(&self) -> f64 {
        crate::bench::proc::cpu(self.pid())
    }
    pub fn rss_kib(&self) -> u64 {
        crate::bench::proc::status_kib(self.pid(), "VmRSS")
    }
    pub fn hwm_kib(&self) -> u64 {
        crate::bench::proc::status_kib(self.pid(), "VmHWM")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("loopback port")
}

impl Env {
    pub fn start(message_size: usize) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-up")
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) =
            oauth_mail_proxy::tls::ensure_generated(&dir.path().join("upstream")).expect("cert");
        let server_tls = oauth_mail_proxy::tls::server_config(&cert, &key).expect("tls");
        let body = message(message_size);
        let (auth, imap, imaps) = rt.block_on(async {
            let auth = AuthServer::start(([127, 0, 0, 1], 0).into(), AuthServerConfig::generated())
                .await
                .expect("auth server");
            let cfg = |tls| MiniImapConfig {
                validate: auth.validator(),
                messages: Arc::new(vec![body.clone()]),
                tls,
            };
            let imap = MiniImap::start(([127, 0, 0, 1], 0).into(), cfg(None)).await;
            let imaps = MiniImap::start(([127, 0, 0, 1], 0).into(), cfg(Some(server_tls))).await;
            (auth, imap.expect("mini-imap"), imaps.expect("mini-imaps"))
        });
        // The proxy's local certificate, made now so the client can trust it.
        let state = dir.path().join("state");
        let (local, _) = oauth_mail_proxy::tls::ensure_generated(&state).expect("local cert");
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        for p in [&cert, &local] {
            for c in oauth_mail_proxy::tls::load_certs(p).expect("certs") {
                roots.add(c).expect("root");
            }
        }
        let tls = Arc::new(
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        Env {
            auth,
            imap,
            imaps,
            dir,
            tls,
            upstream_ca: cert,
            _rt: rt,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Stores tokens for `user` expiring at `expires_at` (unix seconds), as `login` would.
    pub fn store_tokens(&self, store: &TokenStore, user: &str, expires_at: u64) -> String {
        let (access, refresh) = self.auth.mint_tokens(user);
        let now = oauth_mail_proxy::oauth::outcome::unix_now();
        let rec = TokenRecord {
            account: user.into(),
            access_token: SecretString::from(access.clone()),
            refresh_token: Some(SecretString::from(refresh)),
            expires_at: Some(expires_at),
            scopes: vec!["mail".into()],
            obtained_at: now,
            last_refresh: None,
            needs_login: None,
            refresh_expires_at: None,
        };
        store.save(user, &rec).expect("token store");
        access
    }

    /// Starts `oauth-mail-proxy serve` with a plain↔plain and a TLS↔TLS IMAP listener
    /// and `accounts` (`(username, password_hash)`), and waits until it accepts.
    pub fn proxy(&self, accounts: &[(String, String)], refresh_margin: &str) -> Proxy {
        let (plain, tls) = (free_port(), free_port());
        let c = self.auth.config();
        let mut s = format!(
            "[proxy]\nstate_dir = \"{}\"\nrefresh_margin = \"{refresh_margin}\"\n\n",
            self.state_dir().display()
        );
        for (bind, tls_mode, up, up_tls) in [
            (
                plain,
                "none",
                format!("127.0.0.1:{}", self.imap.addr().port()),
                "none",
            ),
            (
                tls,
                "implicit",
                format!("localhost:{}", self.imaps.addr().port()),
                "implicit",
            ),
        ] {
            s += &format!(
                "[[listener]]\nprotocol = \"imap\"\nbind = \"{bind}\"\ntls = \"{tls_mode}\"\nupstream = \"{up}\"\nupstream_tls = \"{up_tls}\"\nupstream_ca = \"{}\"\n\n",
                self.upstream_ca.display()
            );
        }
        for (user, hash) in accounts {
            s += &format!(
                "[[account]]\nusername = \"{user}\"\npassword_hash = \"{hash}\"\nprovider = \"custom\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nscopes = [\"mail\"]\n\n",
                c.client_id,
                c.client_secret,
                self.auth.authorize_url(),
                self.auth.token_url()
            );
        }
        let path = self.dir.path().join("proxy.toml");
        std::fs::write(&path, s).expect("config");
        let child = Command::new(proxy_binary())
            .args(["--log", "warn", "--config"])
            .arg(&path)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start oauth-mail-proxy (build it: cargo build --release)");
        let proxy = Proxy { child, plain, tls };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(plain).is_err() {
            assert!(Instant::now() < deadline, "proxy did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }
}

/// `oauth-mail-proxy` next to this binary (same target profile).
fn proxy_binary() -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    let p = me.with_file_name("oauth-mail-proxy");
    if p.exists() {
        p
    } else {
        Path::new("oauth-mail-proxy").into()
    }
}

/// A message of about `size` bytes: headers and 76-column lines.
fn message(size: usize) -> Bytes {
    let mut m = b"From: bench@example.com\r\nSubject: large\r\n\r\n".to_vec();
    let line = [
        b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd".as_slice(),
        b"\r\n",
    ]
    .concat();
    while m.len() + line.len() <= size {
        m.extend_from_slice(&line);
    }
    Bytes::from(m)
}
