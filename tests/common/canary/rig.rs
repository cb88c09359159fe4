//! The canary rig: the test authorization server (its token endpoint behind an
//! [`HttpTee`]), a Dovecot, two accounts with a planted local password, and the real
//! binary serving listeners at `--log trace`.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::oauth::{TokenRecord, TokenStore};
use secrecy::{ExposeSecret, SecretString};

use super::{HttpTee, Secrets};
use crate::common::Dovecot;
use crate::common::process::{ServeProcess, free_port};
use crate::common::proxy::{AccountSpec, ListenerSpec, write_config};

/// Logs in upstream with XOAUTH2; its token may be short-lived (then refreshed).
pub const ALICE: &str = "alice@example.com";
/// Logs in upstream with OAUTHBEARER.
pub const BOB: &str = "bob@example.com";
pub const SHORT: Duration = Duration::from_secs(2);
pub const HOUR: Duration = Duration::from_secs(3600);
/// The body of the message seeded for both users.
pub const FIRST: &[u8] = b"First message.\r\n";

pub struct CanaryRig {
    pub auth: AuthServer,
    pub dovecot: Dovecot,
    pub dir: tempfile::TempDir,
    pub secrets: Secrets,
    /// The token endpoint as the proxy sees it.
    pub tee: HttpTee,
    /// Both accounts' local password (with spaces and specials).
    pub password: String,
    /// A wrong password, also planted.
    pub wrong: String,
    hash: String,
    /// The upstream ports an OAUTHBEARER line may name.
    pub ports: Vec<u16>,
    /// Everything the clients received, searched as well.
    pub transcript: String,
    /// The admin listener's password (planted) and port.
    admin_password: String,
    admin_port: u16,
    /// What `/metrics`, `/api/accounts` and the overview page served.
    admin_pages: String,
}

impl CanaryRig {
    pub async fn start() -> CanaryRig {
        crate::common::install_crypto_provider();
        let auth = AuthServer::start(
            "127.0.0.1:0".parse().unwrap(),
            AuthServerConfig::generated(),
        )
        .await
        .unwrap();
        let dovecot = Dovecot::start(&auth).await;
        for user in [ALICE, BOB] {
            let msg = [b"From: carol@example.com\r\nSubject: one\r\n\r\n", FIRST].concat();
            dovecot.seed_message(user, &msg);
        }
        let tee = HttpTee::start(auth.addr()).await;
        let token = oauth_mail_proxy::secret::random_token;
        // Spaces and specials, so that the encodings differ from the raw text.
        let password = format!("{}!%+ {}", token(9), token(9));
        let wrong = format!("{}&?= {}", token(9), token(9));
        let hash = oauth_mail_proxy::accounts::hash_password(&SecretString::from(password.clone()));
        let admin_password = token(18);
        let mut secrets = Secrets::default();
        secrets.add("admin password", &admin_password);
        secrets.add("local password", &password);
        secrets.add("wrong password", &wrong);
        let cfg = auth.config().clone();
        secrets.add("client secret", &cfg.client_secret);
        secrets.add_sasl(
            "HTTP Basic credentials",
            format!("{}:{}", cfg.client_id, cfg.client_secret),
        );
        secrets.add("introspection secret", &cfg.introspect_client_secret);
        let ports = vec![
            dovecot.imaps_port,
            dovecot.pop3s_port,
            dovecot.submissions_port,
        ];
        CanaryRig {
            auth,
            dovecot,
            dir: tempfile::tempdir().unwrap(),
            secrets,
            tee,
            password,
            wrong,
            hash,
            ports,
            transcript: String::new(),
            admin_password,
            admin_port: crate::common::process::free_port(),
            admin_pages: String::new(),
        }
    }

    pub fn store(&self) -> TokenStore {
        TokenStore::open(&self.dir.path().join("state")).unwrap()
    }

    fn add_record(&mut self, rec: &TokenRecord) {
        let user = rec.account.as_str();
        self.secrets
            .add_access_token(user, &rec.access_token, &self.ports);
        if let Some(rt) = &rec.refresh_token {
            self.secrets
                .add(format!("refresh token of {user}"), rt.expose_secret());
        }
    }

    /// Stores fresh tokens for `user` (as `login` would) and plants them.
    pub fn store_tokens(&mut self, user: &str, lifetime: Duration) {
        self.auth.set_token_lifetime(lifetime);
        let (access, refresh) = self.auth.mint_tokens(user);
        let now = oauth_mail_proxy::oauth::outcome::unix_now();
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
        self.store().save(user, &rec).unwrap();
        self.add_record(&rec);
    }

    /// Plants the tokens the store holds now and everything that went through the
    /// token endpoint so far; returns the request fields seen there.
    pub fn collect_tokens(&mut self) -> Vec<String> {
        let store = self.store();
        for user in [ALICE, BOB] {
            if let Some(rec) = store.load(user).unwrap() {
                self.add_record(&rec);
            }
        }
        self.tee
            .plant(&mut self.secrets, &[ALICE, BOB], &self.ports)
    }

    /// Plants the token-store key (base64 as stored, hex, base64url).
    pub fn plant_store_key(&mut self) {
        let key = std::fs::read_to_string(self.dir.path().join("state/token.key")).unwrap();
        let key = key.trim().to_string();
        let bytes = STANDARD.decode(&key).unwrap();
        assert_eq!(bytes.len(), 32);
        self.secrets.add("token-store key", &key);
        let hex: String = bytes.iter().map(|x| format!("{x:02x}")).collect();
        self.secrets.add("token-store key (hex)", hex);
        self.secrets.add(
            "token-store key (base64url)",
            URL_SAFE_NO_PAD.encode(&bytes),
        );
    }

    /// Dovecot's port for `protocol` with implicit TLS.
    pub fn upstream(&self, protocol: &'static str) -> ListenerSpec {
        let port = match protocol {
            "imap" => self.dovecot.imaps_port,
            "pop3" => self.dovecot.pop3s_port,
            _ => self.dovecot.submissions_port,
        };
        ListenerSpec {
            protocol,
            alternate_first: None,
            tls: "none",
            upstream: SocketAddr::from(([127, 0, 0, 1], port)),
            upstream_tls: "implicit",
            upstream_ca: Some(self.dovecot.ca_path().to_path_buf()),
        }
    }

    /// `serve --log trace` with `listeners` (Alice XOAUTH2, Bob OAUTHBEARER, token
    /// endpoint through the tee); returns the process and each listener's port.
    pub async fn serve(&self, listeners: &[ListenerSpec]) -> (ServeProcess, Vec<u16>) {
        self.serve_with(listeners, &["--log", "trace"]).await
    }

    /// [`CanaryRig::serve`] with these global options instead of `--log trace`.
    pub async fn serve_with(
        &self,
        listeners: &[ListenerSpec],
        options: &[&str],
    ) -> (ServeProcess, Vec<u16>) {
        let cfg = self.auth.config();
        let authorize_url = self.auth.authorize_url();
        let token_url = self.tee.url_for(&self.auth.token_url());
        let account = |username, mechanism| AccountSpec {
            username,
            password_hash: &self.hash,
            client_id: &cfg.client_id,
            client_secret: &cfg.client_secret,
            authorize_url: &authorize_url,
            token_url: &token_url,
            mechanism,
            extra: "",
        };
        let dir = self.dir.path().to_path_buf();
        let ports = Mutex::new(Vec::new());
        let write = |port: u16| {
            let accounts = [account(ALICE, "xoauth2"), account(BOB, "oauthbearer")];
            let path = write_config(&dir, listeners, &accounts);
            let mut text = std::fs::read_to_string(&path).unwrap();
            let admin_hash = oauth_mail_proxy::accounts::hash_password(&SecretString::from(
                self.admin_password.clone(),
            ));
            let admin = format!(
                "[proxy]\nadmin = \"127.0.0.1:{}\"\nadmin_password_hash = \"{admin_hash}\"\n",
                self.admin_port
            );
            text = text.replacen("[proxy]\n", &admin, 1);
            let mut chosen = vec![port];
            chosen.extend((1..listeners.len()).map(|_| free_port()));
            for p in &chosen {
                let at = text.find("bind = \"127.0.0.1:0\"").expect("a listener");
                let bind = format!("bind = \"127.0.0.1:{p}\"");
                text.replace_range(at..at + "bind = \"127.0.0.1:0\"".len(), &bind);
            }
            std::fs::write(&path, text).unwrap();
            *ports.lock().unwrap() = chosen;
            path
        };
        let log = dir.join("serve.log");
        let proxy = ServeProcess::start(write, options, &log).await;
        let ports = ports.into_inner().unwrap();
        for &p in &ports[1..] {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::net::TcpStream::connect(("127.0.0.1", p))
                .await
                .is_err()
            {
                assert!(tokio::time::Instant::now() < deadline, "port {p}");
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        (proxy, ports)
    }

    /// Fetches `/metrics`, `/api/accounts` and the overview page from the running
    /// proxy's admin listener, to be searched by [`Self::assert_no_leaks`].
    pub async fn scrape_admin(&mut self) {
        let http = reqwest::Client::new();
        for path in ["/metrics", "/api/accounts", "/"] {
            let url = format!("http://127.0.0.1:{}{path}", self.admin_port);
            let resp = http
                .get(&url)
                .basic_auth("admin", Some(&self.admin_password))
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
            let body = resp.text().await.unwrap();
            self.admin_pages.push_str(&format!("{path}:\n{body}\n"));
        }
    }

    /// Adds what a client received to the transcript.
    pub fn record(&mut self, what: &str, reply: impl Debug) {
        self.transcript.push_str(&format!("{what}: {reply:?}\n"));
    }

    /// The final checks: the search finds planted leaks, and neither `output` nor the
    /// clients' transcript holds any secret.
    pub fn assert_no_leaks(&self, output: &str) {
        let access = self.store().load(BOB).unwrap().unwrap().access_token;
        let ir = oauth_mail_proxy::proto::sasl::xoauth2_initial_response(BOB, &access);
        self.secrets
            .assert_search_works(access.expose_secret(), ir.expose_secret());
        self.secrets.assert_search_works(
            &self.password,
            &STANDARD.encode(format!("\0{ALICE}\0{}", self.password)),
        );
        self.secrets
            .assert_clean("the log of serve --log trace", output);
        self.secrets
            .assert_clean("the replies the clients received", &self.transcript);
        assert!(
            self.admin_pages
                .contains("oauth_mail_proxy_logins_ok_total"),
            "scrape_admin() was not called before the proxy stopped"
        );
        self.secrets.assert_clean(
            "/metrics, /api/accounts and the admin page",
            &self.admin_pages,
        );
    }
}
