//! Real clients and TLS: implicit TLS, Python's imaplib, curl.

use super::*;

fn tls_configs() -> (
    Arc<tokio_rustls::rustls::ServerConfig>,
    Arc<tokio_rustls::rustls::ClientConfig>,
) {
    use tokio_rustls::rustls;
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls_pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

#[tokio::test]
async fn implicit_tls() {
    let (server_cfg, client_cfg) = tls_configs();
    let server = MiniImap::start("127.0.0.1:0".parse().unwrap(), config(Some(server_cfg)))
        .await
        .unwrap();
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_cfg)
        .connect(name, tcp)
        .await
        .unwrap();
    let mut c = Client::over(tls);
    assert_eq!(format!("{}\r\n", c.line().await), GREETING);
    c.cmd(&format!("a AUTHENTICATE XOAUTH2 {}", xoauth2(USER, TOKEN)))
        .await;
    c.cmd("b SELECT INBOX").await;
    c.send("c FETCH 2 BODY.PEEK[]").await;
    let (got, _) = c.fetch_literals("c").await;
    assert_eq!(got[0].1, messages()[1]);
    assert_eq!(server.logins(), 1);
    server.shutdown().await;
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const IMAPLIB_SCRIPT: &str = r#"
import hashlib, imaplib, sys
port, user, token = int(sys.argv[1]), sys.argv[2], sys.argv[3]
M = imaplib.IMAP4('127.0.0.1', port)
try:
    M.login(user, 'password')
    sys.exit('LOGIN was accepted')
except imaplib.IMAP4.error:
    pass
try:
    M.authenticate('XOAUTH2', lambda _: f'user={user}\x01auth=Bearer wrong\x01\x01'.encode())
    sys.exit('bad token was accepted')
except imaplib.IMAP4.error:
    pass
typ, _ = M.authenticate('XOAUTH2', lambda _: f'user={user}\x01auth=Bearer {token}\x01\x01'.encode())
assert typ == 'OK', typ
typ, data = M.select('INBOX')
assert typ == 'OK', typ
print('EXISTS', int(data[0]))
typ, data = M.fetch('1:*', '(FLAGS RFC822.SIZE BODY.PEEK[])')
assert typ == 'OK', typ
for item in data:
    if isinstance(item, tuple):
        meta, body = item
        size = int(meta.split(b'RFC822.SIZE ')[1].split()[0])
        assert size == len(body), (size, len(body))
        print('MSG', hashlib.sha256(body).hexdigest(), len(body))
typ, data = M.uid('SEARCH', None, 'ALL')
print('UIDS', data[0].decode())
M.logout()
"#;

#[tokio::test]
async fn python_imaplib_xoauth2() {
    let server = start().await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("python3")
            .arg("-c")
            .arg(IMAPLIB_SCRIPT)
            .arg(server.addr().port().to_string())
            .arg(USER)
            .arg(TOKEN)
            .output(),
    )
    .await
    .expect("python3 hangs")
    .expect("python3 is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "imaplib failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected = vec!["EXISTS 3".to_string()];
    expected.extend(
        messages()
            .iter()
            .map(|m| format!("MSG {} {}", sha256_hex(m), m.len())),
    );
    expected.push("UIDS 1 2 3".to_string());
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
    assert_eq!((server.logins(), server.failed_logins()), (1, 2));
    server.shutdown().await;
}

#[tokio::test]
async fn curl_oauth2_bearer() {
    // Never skipped: scripts/setup-test-deps.sh installs curl.
    assert!(
        std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_ok(),
        "curl is not installed: run scripts/setup-test-deps.sh"
    );
    let server = start().await;
    let msgs = messages();
    let port = server.addr().port();
    // curl picks OAUTHBEARER (it prefers it over XOAUTH2 when both are offered), then
    // SELECT and FETCH n BODY[] / UID FETCH n BODY[].
    for (url, expected) in [
        (format!("imap://127.0.0.1:{port}/INBOX;UID=2"), &msgs[1]),
        (
            format!("imap://127.0.0.1:{port}/INBOX;MAILINDEX=3"),
            &msgs[2],
        ),
    ] {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--user", &format!("{USER}:")])
            .args(["--oauth2-bearer", TOKEN, &url])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(&out.stdout[..], &expected[..], "curl {url}");
    }
    // Wrong token: curl fails, the server counts it.
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--user", &format!("{USER}:")])
        .args(["--oauth2-bearer", "nope"])
        .arg(format!("imap://127.0.0.1:{port}/INBOX;UID=1"))
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert_eq!((server.logins(), server.failed_logins()), (2, 1));
    server.shutdown().await;
}
