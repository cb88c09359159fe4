//! No secret ever reaches the log: the real binary runs `serve --log trace`
//! (everything at trace level, dependencies included) while clients log in every way
//! the proxy accepts, get a password wrong, and outlive a short-lived access token so
//! it is refreshed at the token endpoint. Then every secret involved, in every encoding
//! it travelled in, is searched for in everything the process wrote.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use common::process::ServeProcess;
use common::proxy::{AccountSpec, ListenerSpec, write_config};
use common::{Dovecot, ImapClient, plain};
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};
use oauth_mail_proxy::oauth::{TokenRecord, TokenStore};
use oauth_mail_proxy::proto::sasl::{oauthbearer_initial_response, xoauth2_initial_response};
use secrecy::{ExposeSecret, SecretString};

/// Logs in upstream with XOAUTH2; its token lives two seconds.
const ALICE: &str = "alice@example.com";
/// Logs in upstream with OAUTHBEARER; its token lives an hour.
const BOB: &str = "bob@example.com";
const SHORT: Duration = Duration::from_secs(2);
const HOUR: Duration = Duration::from_secs(3600);

/// Every secret of the test: name, value, and whether it is random throughout (then
/// pieces of it count as leaks too). The same value may be added more than once.
#[derive(Default)]
struct Secrets(Vec<(String, String, bool)>);

impl Secrets {
    /// A random secret: a token, a password, a key.
    fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        assert!(value.len() >= 16, "{value:?} is too short to search for");
        self.0.push((name.into(), value, true));
    }

    /// An encoded payload holding secrets next to known text (a SASL response).
    fn add_payload(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let value = value.into();
        assert!(!value.is_empty());
        self.0.push((name.into(), value, false));
    }

    /// A token the store holds now, and what the proxy would send upstream with it.
    fn add_record(&mut self, rec: &TokenRecord, upstream_port: u16, mechanism: &str) {
        let user = rec.account.as_str();
        self.add_access_token(user, &rec.access_token, upstream_port, mechanism);
        if let Some(rt) = &rec.refresh_token {
            self.add(format!("refresh token of {user}"), rt.expose_secret());
        }
    }

    fn add_access_token(&mut self, user: &str, at: &SecretString, port: u16, mechanism: &str) {
        self.add(format!("access token of {user}"), at.expose_secret());
        let ir = match mechanism {
            "xoauth2" => xoauth2_initial_response(user, at),
            _ => oauthbearer_initial_response(user, "localhost", port, at),
        };
        self.add_payload(
            format!("{mechanism} initial response of {user}"),
            ir.expose_secret(),
        );
    }

    /// Every form a secret could be logged in. Random secrets are also searched for
    /// in pieces, so a truncated token counts as a leak too.
    fn forms(name: &str, value: &str, random: bool) -> Vec<(String, String)> {
        let b = value.as_bytes();
        let url = url::form_urlencoded::byte_serialize(b).collect::<String>();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let mut forms = vec![
            ("raw", value.to_string()),
            ("base64", STANDARD_NO_PAD.encode(b)),
            ("base64url", URL_SAFE_NO_PAD.encode(b)),
            ("url-encoded", url.clone()),
            ("url-encoded (%20)", url.replace('+', "%20")),
            ("hex", hex),
            ("escaped", value.escape_default().to_string()),
        ];
        // 12 random base64 characters carry 72 bits: they never occur by chance.
        if random {
            let chars: Vec<char> = value.chars().collect();
            for w in chars.windows(12).step_by(4) {
                forms.push(("piece", w.iter().collect()));
            }
        }
        forms
            .into_iter()
            .map(|(form, v)| (format!("{name} ({form})"), v))
            .collect()
    }

    /// The secrets (and forms) that occur in `text`.
    fn leaks(&self, text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (name, value, random) in &self.0 {
            for (what, form) in Self::forms(name, value, *random) {
                if let Some(at) = text.find(&form) {
                    let start = text[..at].rfind('\n').map_or(0, |p| p + 1);
                    let end = text[at..].find('\n').map_or(text.len(), |p| at + p);
                    found.push(format!("{what}: in line {:?}", &text[start..end]));
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }
}

struct Rig {
    auth: AuthServer,
    dovecot: Dovecot,
    dir: tempfile::TempDir,
    secrets: Secrets,
}

impl Rig {
    fn store(&self) -> TokenStore {
        TokenStore::open(&self.dir.path().join("state")).unwrap()
    }

    /// Stores fresh tokens for `user` (as `login` would) and remembers them.
    fn store_tokens(&mut self, user: &str, lifetime: Duration, mechanism: &str) {
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
        self.secrets
            .add_record(&rec, self.dovecot.imaps_port, mechanism);
    }

    /// Remembers the tokens the store holds now (the proxy may have refreshed them).
    fn collect_tokens(&mut self) {
        let store = self.store();
        for (user, mechanism) in [(ALICE, "xoauth2"), (BOB, "oauthbearer")] {
            let rec = store.load(user).unwrap().expect("a token record");
            self.secrets
                .add_record(&rec, self.dovecot.imaps_port, mechanism);
        }
    }
}

/// SELECT, FETCH and LOGOUT on a logged-in connection.
async fn use_mailbox(mut c: ImapClient) {
    assert_eq!(c.select("INBOX").await, 1);
    let body = c.fetch_body(1).await;
    assert!(body.ends_with(b"First message.\r\n"), "{body:?}");
    c.logout().await;
}

fn assert_logged_in(r: &common::ImapResponse, what: &str, log: &Path) {
    assert!(
        r.tagged.starts_with("OK [CAPABILITY"),
        "{what}: {r:?}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_log_of_full_logins_holds_no_secret() {
    common::install_crypto_provider();
    let auth = AuthServer::start(
        "127.0.0.1:0".parse().unwrap(),
        AuthServerConfig::generated(),
    )
    .await
    .unwrap();
    let dovecot = Dovecot::start(&auth).await;
    for user in [ALICE, BOB] {
        dovecot.seed_message(
            user,
            b"From: carol@example.com\r\nSubject: one\r\n\r\nFirst message.\r\n",
        );
    }
    let mut rig = Rig {
        auth,
        dovecot,
        dir: tempfile::tempdir().unwrap(),
        secrets: Secrets::default(),
    };
    let token = oauth_mail_proxy::secret::random_token;
    // Spaces and specials, so that the encodings differ from the raw text.
    let password = format!("{}!%+ {}", token(9), token(9));
    let wrong = format!("{}&?= {}", token(9), token(9));
    let hash = oauth_mail_proxy::accounts::hash_password(&SecretString::from(password.clone()));
    rig.secrets.add("local password", &password);
    rig.secrets.add("wrong password", &wrong);
    let cfg = rig.auth.config().clone();
    rig.secrets.add("client secret", &cfg.client_secret);
    rig.secrets.add_payload(
        "HTTP Basic credentials",
        STANDARD.encode(format!("{}:{}", cfg.client_id, cfg.client_secret)),
    );
    rig.secrets
        .add("introspection secret", &cfg.introspect_client_secret);

    // Bob's token outlives the test; Alice's expires every two seconds (refresh
    // margin 1 s), so her logins refresh it at the token endpoint.
    rig.store_tokens(BOB, HOUR, "oauthbearer");
    rig.store_tokens(ALICE, SHORT, "xoauth2");
    let key = std::fs::read_to_string(rig.dir.path().join("state/token.key")).unwrap();
    let key = key.trim().to_string();
    let key_bytes = STANDARD.decode(&key).unwrap();
    assert_eq!(key_bytes.len(), 32);
    rig.secrets.add("token-store key", &key);
    rig.secrets.add(
        "token-store key (hex)",
        key_bytes
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>(),
    );
    rig.secrets.add(
        "token-store key (base64url)",
        URL_SAFE_NO_PAD.encode(&key_bytes),
    );

    let listener = ListenerSpec {
        protocol: "imap",
        alternate_first: None,
        tls: "none",
        upstream: SocketAddr::from(([127, 0, 0, 1], rig.dovecot.imaps_port)),
        upstream_tls: "implicit",
        upstream_ca: Some(rig.dovecot.ca_path().to_path_buf()),
    };
    let authorize_url = rig.auth.authorize_url();
    let token_url = rig.auth.token_url();
    let account = |username, mechanism| AccountSpec {
        username,
        password_hash: &hash,
        client_id: &cfg.client_id,
        client_secret: &cfg.client_secret,
        authorize_url: &authorize_url,
        token_url: &token_url,
        mechanism,
        extra: "",
    };
    let dir = rig.dir.path().to_path_buf();
    let write = |port: u16| {
        let accounts = [account(ALICE, "xoauth2"), account(BOB, "oauthbearer")];
        let path = write_config(&dir, std::slice::from_ref(&listener), &accounts);
        let text = std::fs::read_to_string(&path).unwrap();
        let patched = text.replace(
            "bind = \"127.0.0.1:0\"",
            &format!("bind = \"127.0.0.1:{port}\""),
        );
        assert_ne!(patched, text);
        std::fs::write(&path, patched).unwrap();
        path
    };
    let log = dir.join("serve.log");
    let proxy = ServeProcess::start(write, &["--log", "trace"], &log).await;
    let port = proxy.port;
    let mut logins = 0;

    // LOGIN with a quoted string.
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {ALICE} \"{password}\"")).await;
    assert_logged_in(&r, "LOGIN quoted", &log);
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // LOGIN with the password as a synchronising literal.
    let mut c = ImapClient::connect(port).await;
    let r = c
        .command_with(
            &format!("LOGIN {ALICE} {{{}}}", password.len()),
            &[&password],
        )
        .await;
    assert_eq!(r.continuations.len(), 1, "{r:?}");
    assert_logged_in(&r, "LOGIN literal", &log);
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // AUTHENTICATE PLAIN with SASL-IR.
    let ir = plain(ALICE, &password);
    rig.secrets.add_payload("PLAIN response", &ir);
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("AUTHENTICATE PLAIN {ir}")).await;
    assert_logged_in(&r, "AUTHENTICATE PLAIN SASL-IR", &log);
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // AUTHENTICATE PLAIN with a continuation, and an authorization identity.
    let resp = common::b64(format!("{ALICE}\0{ALICE}\0{password}"));
    rig.secrets
        .add_payload("PLAIN response with authzid", &resp);
    let mut c = ImapClient::connect(port).await;
    let r = c.command_with("AUTHENTICATE PLAIN", &[&resp]).await;
    assert_eq!(r.continuations.len(), 1, "{r:?}");
    assert_logged_in(&r, "AUTHENTICATE PLAIN continuation", &log);
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // A wrong password, with LOGIN and with AUTHENTICATE PLAIN, then the right one on
    // the same connection.
    let bad = plain(ALICE, &wrong);
    rig.secrets
        .add_payload("PLAIN response with the wrong password", &bad);
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {ALICE} \"{wrong}\"")).await;
    assert!(r.tagged.starts_with("NO [AUTHENTICATIONFAILED]"), "{r:?}");
    let r = c.command_with("AUTHENTICATE PLAIN", &[&bad]).await;
    assert!(r.tagged.starts_with("NO [AUTHENTICATIONFAILED]"), "{r:?}");
    let r = c.command(&format!("LOGIN {BOB} \"{password}\"")).await;
    assert_logged_in(&r, "LOGIN after failures (OAUTHBEARER upstream)", &log);
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // Let Alice's token expire: the next login refreshes it at the token endpoint.
    tokio::time::sleep(SHORT + Duration::from_millis(500)).await;
    let refreshes = rig.auth.grants("refresh_token");
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {ALICE} \"{password}\"")).await;
    assert_logged_in(&r, "LOGIN after expiry", &log);
    assert!(
        rig.auth.grants("refresh_token") > refreshes,
        "the expired token was refreshed"
    );
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // Bob's grant is revoked: Dovecot rejects the access token (an error challenge),
    // the refresh is refused with invalid_grant, and the client is told to log in.
    rig.auth.revoke_user(BOB);
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {BOB} \"{password}\"")).await;
    assert!(
        r.tagged.starts_with("NO [AUTHENTICATIONFAILED]") && r.tagged.contains("re-authoris"),
        "{r:?}"
    );
    c.logout().await;
    rig.collect_tokens();

    let (status, output) = proxy.terminate().await;
    assert!(status.success(), "serve exited with {status}:\n{output}");

    // The log shows what happened, at trace level, dependencies included: the test
    // fails when logging breaks instead of passing on an empty log.
    assert_eq!(
        output.matches("logged in; splicing").count(),
        logins,
        "{output}"
    );
    assert_eq!(
        output.matches("local authentication failed").count(),
        2,
        "{output}"
    );
    for evidence in [
        "access token refreshed",
        "upstream rejected the access token",
        "needs re-authorisation",
    ] {
        assert!(output.contains(evidence), "no {evidence:?} in:\n{output}");
    }
    for evidence in [" TRACE ", "rustls::", "hyper", "reqwest"] {
        assert!(output.contains(evidence), "no {evidence:?} in the log");
    }

    // The search finds each kind of leak (so an empty result means something).
    let access = rig.store().load(ALICE).unwrap().unwrap().access_token;
    let access = access.expose_secret();
    for planted in [
        format!("token={access}"),
        format!("token={}...", &access[..14]),
        format!("pw={}", URL_SAFE_NO_PAD.encode(&password)),
        format!(
            "pw={}",
            url::form_urlencoded::byte_serialize(password.as_bytes()).collect::<String>()
        ),
        format!("AUTHENTICATE XOAUTH2 {}", common::xoauth2(ALICE, access)),
        format!("key {:02x?}", key_bytes)
            .replace(", ", "")
            .replace(['[', ']'], ""),
    ] {
        assert!(
            !rig.secrets.leaks(&format!("x\n{planted}\ny")).is_empty(),
            "not found: {planted}"
        );
    }

    let leaks = rig.secrets.leaks(&output);
    assert!(
        leaks.is_empty(),
        "secrets in the log of `serve --log trace` ({}):\n{}",
        log.display(),
        leaks.join("\n")
    );
    // The secrets were collected: both accounts' tokens, at least one refresh.
    assert!(rig.secrets.0.len() >= 20, "{}", rig.secrets.0.len());
}
