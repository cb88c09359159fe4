//! The real binary (`serve`) with one plain listener in front of a fake upstream, an
//! account whose tokens are stored directly (the fake accepts any XOAUTH2), and
//! client logins through it for each protocol.

use std::path::PathBuf;
use std::time::Duration;

use oauth_mail_proxy::oauth::TokenStore;
use secrecy::SecretString;
use tokio::time::Instant;

use super::scripts::Proto;
use crate::common::process::ServeProcess;
use crate::common::{ImapClient, LineClient, Pop3Client, SmtpClient, plain};

pub const USER: &str = "alice@example.com";

/// How the proxy reaches the upstream.
pub struct UpstreamSpec {
    pub proto: Proto,
    /// `implicit`, `starttls` or `none`.
    pub upstream_tls: &'static str,
    pub upstream_port: u16,
    pub upstream_ca: Option<PathBuf>,
    /// `proxy.upstream_timeout`, e.g. `"1s"`.
    pub timeout: &'static str,
    /// The local listener's `tls` (`none` or `implicit`).
    pub local_tls: &'static str,
}

impl UpstreamSpec {
    pub fn new(proto: Proto, upstream_tls: &'static str, upstream_port: u16) -> Self {
        UpstreamSpec {
            proto,
            upstream_tls,
            upstream_port,
            upstream_ca: None,
            timeout: "10s",
            local_tls: "none",
        }
    }
}

/// A running proxy process and what a client needs to log in through it.
pub struct ProxyRig {
    pub dir: tempfile::TempDir,
    pub password: String,
    pub proto: Proto,
    pub serve: ServeProcess,
}

impl ProxyRig {
    pub async fn start(spec: UpstreamSpec) -> ProxyRig {
        let dir = tempfile::tempdir().expect("tempdir");
        let password = oauth_mail_proxy::secret::random_token(12);
        let hash = oauth_mail_proxy::accounts::hash_password(&SecretString::from(password.clone()));
        let state = dir.path().join("state");
        store_tokens(&state);
        let host = if spec.upstream_tls == "none" {
            "127.0.0.1"
        } else {
            "localhost"
        };
        let ca = spec
            .upstream_ca
            .as_ref()
            .map(|p| format!("upstream_ca = \"{}\"\n", p.display()))
            .unwrap_or_default();
        let base = dir.path().to_path_buf();
        let write = |port: u16| {
            let text = format!(
                "[proxy]\nstate_dir = \"{}\"\nauth_failure_delay = \"200ms\"\nupstream_timeout = \"{}\"\n\n\
                 [[listener]]\nprotocol = \"{}\"\nbind = \"127.0.0.1:{port}\"\ntls = \"{}\"\n\
                 upstream = [\"{host}:{}\"]\nupstream_tls = \"{}\"\n{ca}\n\
                 [[account]]\nusername = \"{USER}\"\npassword_hash = \"{hash}\"\nprovider = \"custom\"\n\
                 client_id = \"test-client\"\nclient_secret = \"unused\"\n\
                 authorize_url = \"http://127.0.0.1:9/authorize\"\ntoken_url = \"http://127.0.0.1:9/token\"\n\
                 scopes = [\"mail\"]\nmechanism = \"xoauth2\"\n",
                state.display(),
                spec.timeout,
                spec.proto.name(),
                spec.local_tls,
                spec.upstream_port,
                spec.upstream_tls,
            );
            let path = base.join("proxy.toml");
            std::fs::write(&path, text).expect("write config");
            path
        };
        let log = dir.path().join("serve.log");
        let serve = start_serve(write, &log).await;
        ProxyRig {
            dir,
            password,
            proto: spec.proto,
            serve,
        }
    }

    pub fn port(&self) -> u16 {
        self.serve.port
    }

    pub fn log(&self) -> String {
        self.serve.output()
    }

    /// Waits (at most `limit`) for a log line containing every one of `needles`;
    /// returns it, or panics with the whole log.
    pub async fn log_line(&self, needles: &[&str], limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let log = self.log();
            if let Some(l) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needles:?} within {limit:?}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Logs in through the proxy; returns the connection and the final reply line
    /// (IMAP tagged response without its tag, POP3 `PASS` reply, SMTP `AUTH` reply code and text).
    pub async fn login(&self) -> (LineClient, String) {
        match self.proto {
            Proto::Imap => {
                let mut c = ImapClient::connect(self.port()).await;
                let r = c
                    .command(&format!("LOGIN {USER} \"{}\"", self.password))
                    .await;
                (c.conn, r.tagged)
            }
            Proto::Pop3 => {
                let mut c = Pop3Client::connect(self.port()).await;
                let user = c.command(&format!("USER {USER}")).await;
                assert!(user.starts_with("+OK"), "USER: {user}");
                let r = c.command(&format!("PASS {}", self.password)).await;
                (c.conn, r)
            }
            Proto::Smtp => {
                let mut c = SmtpClient::connect(self.port()).await;
                c.ehlo("client.example").await;
                let r = c
                    .command(&format!("AUTH PLAIN {}", plain(USER, &self.password)))
                    .await;
                (c.conn, format!("{} {}", r.code, r.lines.join(" / ")))
            }
        }
    }

    /// Whether `reply` (from [`Self::login`]) is a success.
    pub fn logged_in(&self, reply: &str) -> bool {
        match self.proto {
            Proto::Imap => reply.starts_with("OK"),
            Proto::Pop3 => reply.starts_with("+OK"),
            Proto::Smtp => reply.starts_with("235"),
        }
    }

    /// Whether `reply` is the temporary failure a client gets when the upstream is
    /// unavailable (IMAP `NO [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`, SMTP `454`).
    pub fn temporary_failure(&self, reply: &str) -> bool {
        match self.proto {
            Proto::Imap => reply.starts_with("NO [UNAVAILABLE]"),
            Proto::Pop3 => reply.starts_with("-ERR [SYS/TEMP]"),
            Proto::Smtp => reply.starts_with("454"),
        }
    }
}

/// [`ServeProcess::start`], made sure that the port answering is this process's
/// listener: the free port it picked may have been taken meanwhile (by a fake
/// upstream, say) and answered for it while `serve` failed to bind. Then it retries.
async fn start_serve(write: impl Fn(u16) -> PathBuf, log: &std::path::Path) -> ServeProcess {
    for _ in 0..3 {
        let mut serve = ServeProcess::start(&write, &[], log).await;
        let mine = format!("listener=Some(127.0.0.1:{})", serve.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = serve.output();
            if out
                .lines()
                .any(|l| l.contains("listening") && l.contains(&mine))
            {
                return serve;
            }
            if serve.child.try_wait().expect("try_wait").is_some() {
                break; // could not bind: try another port
            }
            assert!(
                Instant::now() < deadline,
                "serve did not log {mine}:\n{out}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    panic!("serve could not bind a free port in three attempts");
}

/// Stores a long-lived access token for [`USER`] in `state`, as `login` would.
fn store_tokens(state: &std::path::Path) {
    let store = TokenStore::open(state).expect("open token store");
    let rec = crate::common::admin::token_record(USER, None);
    store.save(USER, &rec).expect("save tokens");
}
