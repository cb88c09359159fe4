//! Regression tests for the intermittent upload stalls of the benchmark: the load
//! clients ([`super::client::Client`], [`super::smtp::Smtp`]) upload many large
//! messages over TLS to the in-memory upstreams, directly and through the proxy's
//! splice (TLS↔TLS buffered, plain↔plain `splice(2)`). Every message must be
//! acknowledged within [`STEP`]; a stall fails the test instead of hanging it.
//!
//! Before the fix the clients never flushed their TLS stream: tokio-rustls may keep
//! the last records of a write in rustls' send buffer when the socket is full, and
//! nothing pushed them out while the client waited for the reply.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use oauth_mail_proxy::splice::splice;
use oauth_mail_proxy::stream::Stream;
use oauth_mail_proxy::testkit::mini_smtp::{MiniSmtp, MiniSmtpConfig};
use oauth_mail_proxy::testkit::{MiniImap, MiniImapConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::{self, ClientConfig, ServerConfig};
use tokio_util::sync::CancellationToken;

use super::client::Client;
use super::smtp::{Smtp, chunk};

/// Longest wait for one message's reply (generous: debug builds, 2 shared CPUs).
const STEP: Duration = Duration::from_secs(60);
const MB: u64 = 1 << 20;

fn tls_configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn mini_imap(tls: Option<Arc<ServerConfig>>) -> MiniImap {
    let cfg = MiniImapConfig {
        validate: Arc::new(|_, token| token == "tok"),
        messages: Arc::new(Vec::new()),
        tls,
    };
    MiniImap::start(loopback(), cfg).await.unwrap()
}

/// A stand-in for the proxy after login: accepts clients (TLS when `tls` is given),
/// connects to `upstream` (TLS too) and splices the two with the proxy's splice.
async fn splice_pair(
    upstream: SocketAddr,
    tls: Option<(Arc<ServerConfig>, Arc<ClientConfig>)>,
) -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut down = Stream::Plain(tcp);
                let mut up = Stream::Plain(TcpStream::connect(upstream).await.unwrap());
                if let Some((server, client)) = tls {
                    down.accept_tls(server).await.unwrap();
                    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
                    up.connect_tls(client, name).await.unwrap();
                }
                let stop = CancellationToken::new();
                let idle = Duration::from_secs(300);
                let _ = splice(&mut down, &mut up, b"", b"", &stop, idle).await;
            });
        }
    });
    addr
}

/// `count` APPENDs of `size` bytes each, every one acknowledged within [`STEP`].
async fn appends(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>, count: usize, size: u64) {
    let mut c = Client::connect(addr, tls).await.unwrap();
    c.xoauth2("u@example.com", "tok").await.unwrap();
    c.command("SELECT INBOX").await.unwrap();
    let chunk = vec![b'x'; 256 * 1024];
    for i in 0..count {
        tokio::time::timeout(STEP, c.append(size, &chunk))
            .await
            .unwrap_or_else(|_| panic!("APPEND {i} of {count} stalled"))
            .unwrap();
    }
    tokio::time::timeout(STEP, c.logout())
        .await
        .expect("LOGOUT stalled")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_appends_to_mini_imap_never_stall() {
    let (server, client) = tls_configs();
    let up = mini_imap(Some(server)).await;
    appends(up.addr(), Some(&client), 50, 8 * MB).await;
    assert_eq!(up.appended_bytes(), 50 * 8 * MB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_through_a_splice_pair_never_stall() {
    let (server, client) = tls_configs();
    let up_tls = mini_imap(Some(server.clone())).await;
    let via = splice_pair(up_tls.addr(), Some((server, client.clone()))).await;
    appends(via, Some(&client), 25, 8 * MB).await;
    assert_eq!(up_tls.appended_bytes(), 25 * 8 * MB);

    let up_plain = mini_imap(None).await;
    let via = splice_pair(up_plain.addr(), None).await;
    appends(via, None, 25, 8 * MB).await;
    assert_eq!(up_plain.appended_bytes(), 25 * 8 * MB);
}

/// `count` messages of about `chunks` × 256 KiB, each acknowledged within [`STEP`].
async fn messages(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>, count: usize, chunks: usize) {
    let mut s = Smtp::connect(addr, tls).await.unwrap();
    s.auth_xoauth2("u@example.com", "tok").await.unwrap();
    let chunk = chunk();
    for i in 0..count {
        tokio::time::timeout(STEP, s.message(&chunk, chunks))
            .await
            .unwrap_or_else(|_| panic!("message {i} of {count} stalled"))
            .unwrap();
    }
    tokio::time::timeout(STEP, s.quit())
        .await
        .expect("QUIT stalled")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_smtp_messages_never_stall_direct_or_spliced() {
    let (server, client) = tls_configs();
    let cfg = MiniSmtpConfig {
        validate: Arc::new(|_, token| token == "tok"),
        tls: Some(server.clone()),
    };
    let up = MiniSmtp::start(loopback(), cfg).await.unwrap();
    messages(up.addr(), Some(&client), 30, 32).await;
    let via = splice_pair(up.addr(), Some((server, client.clone()))).await;
    messages(via, Some(&client), 30, 32).await;
    assert_eq!(up.messages(), 60);
    assert_eq!(up.data_bytes(), 60 * 32 * chunk().len() as u64);
}
