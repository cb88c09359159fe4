//! The admin listener wired into a real proxy: logins through the proxy against the
//! Dovecot rig move the Prometheus counters by exactly the right amounts, and the
//! probes answer.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::proxy::write_config;
use common::rig::{HOUR, Rig, USER};
use common::{ImapClient, Pop3Client};
use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::listener::Server;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The value of the sample `name{labels}` (labels written as in the text), or 0.
fn sample(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == name_and_labels).then(|| v.parse().unwrap())
        })
        .unwrap_or(0.0)
}

struct Admin {
    base: String,
    password: String,
    http: reqwest::Client,
}

impl Admin {
    async fn metrics(&self) -> String {
        let res = self
            .http
            .get(format!("{}/metrics", self.base))
            .basic_auth("admin", Some(&self.password))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    }

    async fn status(&self, path: &str) -> u16 {
        let res = self.http.get(format!("{}{path}", self.base)).send().await;
        res.unwrap().status().as_u16()
    }
}

/// A proxy in this process with the admin listener on port 0 and these listeners.
async fn start(
    rig: &Rig,
    protocols: &[&'static str],
    extra_proxy: &str,
) -> (Admin, Vec<SocketAddr>, CancellationToken, JoinHandle<()>) {
    let admin_password = oauth_mail_proxy::secret::random_token(16);
    let admin_hash =
        oauth_mail_proxy::accounts::hash_password(&SecretString::from(admin_password.clone()));
    let listeners: Vec<_> = protocols
        .iter()
        .map(|p| rig.listener(p, "none", "implicit"))
        .collect();
    let path = write_config(rig.dir.path(), &listeners, &[rig.account("xoauth2")]);
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "[proxy]\n",
        &format!(
            "[proxy]\nadmin = \"127.0.0.1:0\"\nadmin_password_hash = \"{admin_hash}\"\n{extra_proxy}"
        ),
        1,
    );
    std::fs::write(&path, text).unwrap();
    let server = Server::bind(Config::load(&path).unwrap()).await.unwrap();
    let addrs = server.local_addrs();
    let admin_addr: SocketAddr = server.admin_addr().expect("admin listener bound");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    let admin = Admin {
        base: format!("http://{admin_addr}"),
        password: admin_password,
        http: reqwest::Client::new(),
    };
    (admin, addrs, shutdown, task)
}

async fn stop(shutdown: CancellationToken, task: JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the proxy stops")
        .unwrap();
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_by_what_the_clients_did() {
    let rig = Rig::start().await;
    rig.store_tokens(HOUR);
    let (admin, addrs, shutdown, task) = start(&rig, &["imap", "pop3"], "").await;
    let (imap, pop3) = (addrs[0].port(), addrs[1].port());
    let imap_label = format!("listener=\"imap {}\"", addrs[0]);
    let pop3_label = format!("listener=\"pop3 {}\"", addrs[1]);

    assert_eq!(admin.status("/healthz").await, 200);
    assert_eq!(admin.status("/readyz").await, 200);
    assert_eq!(
        admin.status("/metrics").await,
        401,
        "metrics need the password"
    );
    let before = admin.metrics().await;
    let ok = "oauth_mail_proxy_logins_ok_total";
    assert_eq!(sample(&before, ok), 0.0, "{before}");

    // Two good IMAP logins (one fetches a message), one wrong password.
    let mut fetched = 0;
    for i in 0..2 {
        let mut c = ImapClient::connect(imap).await;
        let r = c
            .command(&format!("LOGIN {USER} \"{}\"", rig.password))
            .await;
        assert!(r.is_ok(), "{r:?}");
        if i == 0 {
            c.select("INBOX").await;
            fetched = c.fetch_body(2).await.len();
        }
        c.logout().await;
    }
    let mut c = ImapClient::connect(imap).await;
    let r = c
        .command(&format!("LOGIN {USER} \"wrong-{}\"", rig.password))
        .await;
    assert!(!r.is_ok(), "{r:?}");
    c.logout().await;
    // One POP3 login.
    let mut p = Pop3Client::connect(pop3).await;
    assert!(p.command(&format!("USER {USER}")).await.starts_with("+OK"));
    assert!(
        p.command(&format!("PASS {}", rig.password))
            .await
            .starts_with("+OK")
    );
    p.quit().await;
    assert!(
        fetched > 50_000,
        "the big message was fetched: {fetched} bytes"
    );

    // Sessions end asynchronously after the clients close: wait for the gauges.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = admin.metrics().await;
        let open = sample(
            &m,
            &format!("oauth_mail_proxy_connections_open{{{imap_label}}}"),
        ) + sample(
            &m,
            &format!("oauth_mail_proxy_connections_open{{{pop3_label}}}"),
        );
        if open == 0.0 || tokio::time::Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let get = |k: &str| sample(&m, k);
    assert_eq!(get(ok), 3.0, "{m}");
    assert_eq!(
        get("oauth_mail_proxy_logins_failed_total{reason=\"bad_credentials\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        get("oauth_mail_proxy_upstream_auth_failures_total"),
        0.0,
        "{m}"
    );
    assert_eq!(
        get(&format!(
            "oauth_mail_proxy_connections_total{{{imap_label}}}"
        )),
        3.0,
        "{m}"
    );
    assert_eq!(
        get(&format!(
            "oauth_mail_proxy_connections_total{{{pop3_label}}}"
        )),
        1.0,
        "{m}"
    );
    assert_eq!(
        get(&format!(
            "oauth_mail_proxy_connections_open{{{imap_label}}}"
        )),
        0.0,
        "{m}"
    );
    assert_eq!(
        get(&format!(
            "oauth_mail_proxy_connections_open{{{pop3_label}}}"
        )),
        0.0,
        "{m}"
    );
    let bytes = |l: &str, dir: &str| {
        get(&format!(
            "oauth_mail_proxy_spliced_bytes_total{{{l},direction=\"{dir}\"}}"
        ))
    };
    assert!(bytes(&imap_label, "client_to_upstream") > 0.0, "{m}");
    assert!(
        bytes(&imap_label, "upstream_to_client") >= fetched as f64,
        "the fetched message went down: {m}"
    );
    assert!(bytes(&pop3_label, "client_to_upstream") > 0.0, "{m}");
    assert!(bytes(&pop3_label, "upstream_to_client") > 0.0, "{m}");
    // The account gauges come from the token store.
    let acc = format!("{{account=\"{USER}\"}}");
    let expiry = get(&format!("oauth_mail_proxy_token_expiry_seconds{acc}"));
    assert!(expiry > 3000.0 && expiry <= 3600.0, "{m}");
    assert!(
        m.contains(&format!("oauth_mail_proxy_account_needs_login{acc} 0")),
        "{m}"
    );
    stop(shutdown, task).await;
}

/// Clients dropped before login are counted by reason: the pre-auth timeout, the
/// last allowed failed login, a too long line, a too large literal, too many errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preauth_rejections_by_reason() {
    let rig = Rig::start().await;
    // Tokens living 1 s (under refresh_margin): the good login refreshes once.
    rig.store_tokens(Duration::from_secs(1));
    let (admin, addrs, shutdown, task) = start(
        &rig,
        &["imap"],
        "preauth_timeout = \"1s\"\nmax_auth_failures = 2\n",
    )
    .await;
    let port = addrs[0].port();
    let reason = |m: &str, r: &str| {
        sample(
            m,
            &format!("oauth_mail_proxy_preauth_rejections_total{{reason=\"{r}\"}}"),
        )
    };
    let mut c = ImapClient::connect(port).await;
    let r = c
        .command(&format!("LOGIN {USER} \"{}\"", rig.password))
        .await;
    assert!(r.is_ok(), "{r:?}");
    c.logout().await;
    let mut idle = ImapClient::connect(port).await;
    let mut failing = ImapClient::connect(port).await;
    for _ in 0..2 {
        let r = failing.command(&format!("LOGIN {USER} \"wrong\"")).await;
        assert!(!r.is_ok(), "{r:?}");
    }
    let bye = failing.conn.read_line().await;
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(failing.conn.closed().await, "closed after the last failure");
    // A line over max_line, a `{n+}` literal over max_literal, and max_errors (5)
    // invalid commands: each closes its connection and counts under its reason.
    let mut long = ImapClient::connect(port).await;
    long.conn.write_all(&vec![b'a'; 9000]).await;
    assert!(long.conn.read_line().await.contains("BAD Line too long"));
    assert!(long.conn.closed().await, "closed after a too long line");
    let mut literal = ImapClient::connect(port).await;
    literal.conn.send_line("a1 LOGIN {100000+}").await;
    assert!(literal.conn.read_line().await.starts_with("a1 BAD"));
    assert!(literal.conn.read_line().await.starts_with("* BYE"));
    assert!(
        literal.conn.closed().await,
        "closed after a too large literal"
    );
    let mut errors = ImapClient::connect(port).await;
    for i in 0..5 {
        errors.conn.send_line(&format!("e{i} NONSENSE")).await;
        let bad = errors.conn.read_line().await;
        assert!(bad.starts_with(&format!("e{i} BAD")), "{bad}");
    }
    assert!(errors.conn.read_line().await.starts_with("* BYE"));
    assert!(errors.conn.closed().await, "closed after too many errors");
    assert!(idle.conn.closed().await, "closed at the pre-auth timeout");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = admin.metrics().await;
        if reason(&m, "timeout") + reason(&m, "too_many_failures") >= 2.0
            || tokio::time::Instant::now() > deadline
        {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reason(&m, "too_many_failures"), 1.0, "{m}");
    assert_eq!(reason(&m, "timeout"), 1.0, "{m}");
    assert_eq!(reason(&m, "busy"), 0.0, "{m}");
    assert_eq!(reason(&m, "line_too_long"), 1.0, "{m}");
    assert_eq!(reason(&m, "literal_too_long"), 1.0, "{m}");
    assert_eq!(reason(&m, "too_many_errors"), 1.0, "{m}");
    let refreshes = |r: &str| {
        sample(
            &m,
            &format!("oauth_mail_proxy_token_refreshes_total{{result=\"{r}\"}}"),
        )
    };
    assert_eq!((refreshes("ok"), refreshes("failed")), (1.0, 0.0), "{m}");
    assert_eq!(
        sample(
            &m,
            "oauth_mail_proxy_logins_failed_total{reason=\"bad_credentials\"}"
        ),
        2.0,
        "{m}"
    );
    stop(shutdown, task).await;
}
