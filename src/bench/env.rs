//! Everything a run needs on loopback: the test authorization server and MiniImap
//! upstreams (plain and implicit TLS) on their own runtime ("bench-up" threads), and
//! the proxy as a child process (`oauth-mail-proxy serve`), so its CPU and memory are
//! its own.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::oauth::{TokenRecord, TokenStore};
use oauth_mail_proxy::testkit::mini_smtp::{MiniSmtp, MiniSmtpConfig};
use oauth_mail_proxy::testkit::{MiniImap, MiniImapConfig};
use secrecy::SecretString;
use tokio_rustls::rustls::ClientConfig;

pub const USER: &str = "bench@example.com";
pub const PASSWORD: &str = "bench-password-1";

pub struct Env {
    pub auth: AuthServer,
    pub imap: MiniImap,
    pub imaps: MiniImap,
    pub smtp: MiniSmtp,
    pub smtps: MiniSmtp,
    /// Started by [`Env::start_dovecot`]; the proxy gets listeners for it.
    pub dovecot: Option<super::dovecot::Dovecot>,
    pub dir: tempfile::TempDir,
    /// Trusts the upstream's and the proxy's certificates.
    pub tls: Arc<ClientConfig>,
    /// Size of the message the MiniImap upstreams serve (checked by the tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub message_len: u64,
    upstream_ca: PathBuf,
    upstream_key: PathBuf,
    /// Runs the upstreams; dropped last.
    _rt: tokio::runtime::Runtime,
}

pub struct Proxy {
    pub child: Child,
    pub plain: SocketAddr,
    pub tls: SocketAddr,
    pub smtp: SocketAddr,
    pub smtps: SocketAddr,
    /// Plain client side, TLS upstream (the comparison with email-oauth2-proxy).
    pub plain_to_tls: SocketAddr,
    /// Plain and TLS IMAP listeners to Dovecot, when it runs.
    pub dovecot: Option<(SocketAddr, SocketAddr)>,
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

/// The upstream as the proxy config names it: TLS upstreams by the certificate's name.
fn host(a: SocketAddr, tls: &str) -> String {
    let name = if tls == "none" {
        "127.0.0.1"
    } else {
        "localhost"
    };
    format!("{name}:{}", a.port())
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
        let message_len = body.len() as u64;
        let (auth, imap, imaps, smtp, smtps) = rt.block_on(async {
            let auth = AuthServer::start(([127, 0, 0, 1], 0).into(), AuthServerConfig::generated())
                .await
                .expect("auth server");
            let cfg = |tls| MiniImapConfig {
                validate: auth.validator(),
                messages: Arc::new(vec![body.clone()]),
                tls,
            };
            let imap = MiniImap::start(([127, 0, 0, 1], 0).into(), cfg(None)).await;
            let imaps =
                MiniImap::start(([127, 0, 0, 1], 0).into(), cfg(Some(server_tls.clone()))).await;
            let scfg = |tls| MiniSmtpConfig {
                validate: auth.validator(),
                tls,
            };
            let loopback: SocketAddr = ([127, 0, 0, 1], 0).into();
            let smtp = MiniSmtp::start(loopback, scfg(None)).await;
            let smtps = MiniSmtp::start(loopback, scfg(Some(server_tls))).await;
            (
                auth,
                imap.expect("mini-imap"),
                imaps.expect("mini-imaps"),
                smtp.expect("mini-smtp"),
                smtps.expect("mini-smtps"),
            )
        });
        // The proxy's local certificate, made now so the client can trust it.
        let state = dir.path().join("state");
        let (local, _) = oauth_mail_proxy::tls::ensure_generated(&state).expect("local cert");
        // The proxy refuses a token store that group/other can read.
        std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod state dir");
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
            smtp,
            smtps,
            dovecot: None,
            dir,
            tls,
            message_len,
            upstream_ca: cert,
            upstream_key: key,
            _rt: rt,
        }
    }

    /// Starts the private Dovecot (TLS with the upstream certificate) and seeds
    /// `messages` messages into [`USER`]'s INBOX; proxies started afterwards get
    /// listeners for it.
    pub fn start_dovecot(&mut self, messages: usize) -> Result<(), String> {
        let mut d =
            super::dovecot::Dovecot::start(&self.auth, &self.upstream_ca, &self.upstream_key)?;
        d.seed(USER, messages)
            .map_err(|e| format!("seeding the mailbox: {e}"))?;
        self.dovecot = Some(d);
        Ok(())
    }

    pub fn upstream_ca(&self) -> &Path {
        &self.upstream_ca
    }

    pub fn upstream_key(&self) -> &Path {
        &self.upstream_key
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
        let (plain, tls, smtp, smtps) = (free_port(), free_port(), free_port(), free_port());
        let plain_to_tls = free_port();
        let dove = self.dovecot.as_ref().map(|_| (free_port(), free_port()));
        let c = self.auth.config();
        let mut s = format!(
            "[proxy]\nstate_dir = \"{}\"\nrefresh_margin = \"{refresh_margin}\"\nmax_connections_per_source = 0\n\n",
            self.state_dir().display()
        );
        let mut listeners = vec![
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
        ];
        let smtp_up = [(smtp, &self.smtp, "none"), (smtps, &self.smtps, "implicit")];
        listeners.push((
            plain_to_tls,
            "none",
            host(self.imaps.addr(), "implicit"),
            "implicit",
        ));
        let mut protocols = vec!["imap", "imap", "imap"];
        for (bind, up, mode) in smtp_up {
            listeners.push((bind, mode, host(up.addr(), mode), mode));
            protocols.push("smtp");
        }
        if let (Some(d), Some((dp, dt))) = (&self.dovecot, dove) {
            listeners.push((dp, "none", host(d.imap, "none"), "none"));
            listeners.push((dt, "implicit", host(d.imaps, "implicit"), "implicit"));
            protocols.extend(["imap", "imap"]);
        }
        for ((bind, tls_mode, up, up_tls), protocol) in listeners.into_iter().zip(protocols) {
            s += &format!(
                "[[listener]]\nprotocol = \"{protocol}\"\nbind = \"{bind}\"\ntls = \"{tls_mode}\"\nupstream = \"{up}\"\nupstream_tls = \"{up_tls}\"\nupstream_ca = \"{}\"\n\n",
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
        let child = crate::bench::proc::command_under_test(proxy_binary())
            .args(["--log", "warn", "--config"])
            .arg(&path)
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start oauth-mail-proxy (build it: cargo build --release)");
        let proxy = Proxy {
            child,
            plain,
            tls,
            smtp,
            smtps,
            plain_to_tls,
            dovecot: dove,
        };
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
