//! The usual end-to-end rig: a test authorization server, a Dovecot checking its
//! tokens with two seeded messages, a local password for USER, and a state dir for the
//! proxy under test.

use std::net::SocketAddr;
use std::time::Duration;

use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::oauth::{TokenRecord, TokenStore};
use secrecy::SecretString;

use super::Dovecot;
use super::proxy::{AccountSpec, ListenerSpec, TestProxy, write_config};

pub const USER: &str = "alice@example.com";
pub const HOUR: Duration = Duration::from_secs(3600);

pub struct Rig {
    pub auth: AuthServer,
    pub dovecot: Dovecot,
    pub dir: tempfile::TempDir,
    pub password: String,
    pub hash: String,
}

impl Rig {
    pub async fn start() -> Rig {
        super::install_crypto_provider();
        let auth = AuthServer::start(
            "127.0.0.1:0".parse().unwrap(),
            AuthServerConfig::generated(),
        )
        .await
        .unwrap();
        let dovecot = Dovecot::start(&auth).await;
        dovecot.seed_message(USER, b"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: one\r\n\r\nFirst message.\r\n");
        let big: String = (0..2000)
            .map(|i| format!("line {i} of a longer message\r\n"))
            .collect();
        dovecot.seed_message(
            USER,
            format!("From: carol@example.com\r\nSubject: two\r\n\r\n{big}").as_bytes(),
        );
        let password = oauth_mail_proxy::secret::random_token(12);
        let hash = oauth_mail_proxy::accounts::hash_password(&SecretString::from(password.clone()));
        Rig {
            auth,
            dovecot,
            dir: tempfile::tempdir().unwrap(),
            password,
            hash,
        }
    }

    pub fn account(&self, mechanism: &'static str) -> AccountSpec<'_> {
        let c = self.auth.config();
        AccountSpec {
            username: USER,
            password_hash: &self.hash,
            client_id: &c.client_id,
            client_secret: &c.client_secret,
            authorize_url: Box::leak(self.auth.authorize_url().into_boxed_str()),
            token_url: Box::leak(self.auth.token_url().into_boxed_str()),
            mechanism,
            extra: "",
        }
    }

    pub fn imaps(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.dovecot.imaps_port))
    }

    pub fn imap(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.dovecot.imap_port))
    }

    /// Sets the lifetime of tokens the server issues from now on and stores fresh
    /// tokens for USER in the proxy's state dir, as `login` would.
    pub fn store_tokens(&self, lifetime: Duration) -> (String, String) {
        self.auth.set_token_lifetime(lifetime);
        let (access, refresh) = self.auth.mint_tokens(USER);
        let now = oauth_mail_proxy::oauth::outcome::unix_now();
        let store = TokenStore::open(&self.dir.path().join("state")).unwrap();
        let rec = TokenRecord {
            account: USER.into(),
            access_token: SecretString::from(access.clone()),
            refresh_token: Some(SecretString::from(refresh.clone())),
            expires_at: Some(now + lifetime.as_secs()),
            scopes: vec!["mail".into()],
            obtained_at: now,
            last_refresh: None,
            needs_login: None,
            refresh_expires_at: None,
        };
        store.save(USER, &rec).unwrap();
        (access, refresh)
    }

    pub async fn proxy(&self, listeners: &[ListenerSpec], mechanism: &'static str) -> TestProxy {
        let path = write_config(self.dir.path(), listeners, &[self.account(mechanism)]);
        TestProxy::start(&path).await
    }

    /// Dovecot's port for this protocol and TLS mode ("implicit" or "starttls").
    pub fn port(&self, protocol: &str, tls: &str) -> u16 {
        let d = &self.dovecot;
        match (protocol, tls) {
            ("imap", "implicit") => d.imaps_port,
            ("imap", _) => d.imap_port,
            ("pop3", "implicit") => d.pop3s_port,
            ("pop3", _) => d.pop3_port,
            ("smtp", "implicit") => d.submissions_port,
            _ => d.submission_port,
        }
    }

    /// A listener of `protocol` with local TLS `tls`, upstream to this Dovecot.
    pub fn listener(
        &self,
        protocol: &'static str,
        tls: &'static str,
        upstream_tls: &'static str,
    ) -> ListenerSpec {
        ListenerSpec {
            protocol,
            alternate_first: None,
            tls,
            upstream: SocketAddr::from(([127, 0, 0, 1], self.port(protocol, upstream_tls))),
            upstream_tls,
            upstream_ca: Some(self.dovecot.ca_path().to_path_buf()),
        }
    }

    /// The proxy's generated local certificate, for clients to trust.
    pub fn local_ca(&self) -> String {
        self.dir
            .path()
            .join("state/certs/local-cert.pem")
            .display()
            .to_string()
    }
}
