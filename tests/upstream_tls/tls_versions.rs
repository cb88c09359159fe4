//! TLS 1.2 is the minimum on both sides, shown with `openssl s_server`/`s_client`
//! restricted to one protocol version.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::common;
use super::common::certs::UpstreamPki;
use super::common::fake_upstream::proxy_rig::{ProxyRig, UpstreamSpec};
use super::common::fake_upstream::scripts::Proto;
use super::common::process::free_port;

/// `openssl s_server` on a free port speaking only `version` (`-tls1_1`, `-tls1_2`),
/// with the good certificate; waits until it accepts.
async fn s_server(pki: &UpstreamPki, version: &str) -> (Child, u16) {
    let (cert, key) = pki.good.write(pki.dir(), "good");
    let port = free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(port.to_string())
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .args([version, "-cipher", "DEFAULT@SECLEVEL=0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl s_server runs");
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (child, port);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("openssl s_server did not listen on {port}");
}

async fn proxy_to(pki: &UpstreamPki, port: u16) -> ProxyRig {
    let mut spec = UpstreamSpec::new(Proto::Imap, "implicit", port);
    spec.upstream_ca = Some(pki.ca_path.clone());
    spec.timeout = "1s";
    ProxyRig::start(spec).await
}

#[tokio::test]
async fn an_upstream_speaking_only_tls_1_1_is_refused() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let (_server, port) = s_server(&pki, "-tls1_1").await;
    let rig = proxy_to(&pki, port).await;
    let (_conn, reply) = rig.login().await;
    assert!(rig.temporary_failure(&reply), "TLS 1.1 upstream: {reply}");
    let line = rig
        .log_line(&["upstream login failed", "TLS handshake"], super::LOG_WAIT)
        .await;
    eprintln!("{line}");
    assert!(line.contains("version"), "no protocol version in: {line}");
}

#[tokio::test]
async fn an_upstream_speaking_tls_1_2_completes_the_handshake() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let (_server, port) = s_server(&pki, "-tls1_2").await;
    let rig = proxy_to(&pki, port).await;
    let (_conn, reply) = rig.login().await;
    // s_server never greets: the handshake worked, the greeting step timed out.
    assert!(rig.temporary_failure(&reply), "TLS 1.2 upstream: {reply}");
    rig.log_line(
        &["upstream login failed", "greeting: timed out"],
        super::LOG_WAIT,
    )
    .await;
    assert!(!rig.log().contains("TLS handshake"), "{}", rig.log());
}

/// `openssl s_client -VERSION` against the proxy's implicit-TLS listener; returns
/// whether the handshake completed, and the output.
async fn s_client(port: u16, version: &str) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args([version, "-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("s_client finished")
    .expect("openssl s_client runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let established = text.contains("Cipher is ") && !text.contains("Cipher is (NONE)");
    (established, text)
}

#[tokio::test]
async fn a_tls_1_1_client_is_refused_by_an_implicit_tls_listener() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let mut spec = UpstreamSpec::new(Proto::Imap, "implicit", free_port());
    spec.upstream_ca = Some(pki.ca_path.clone());
    spec.local_tls = "implicit";
    let rig = ProxyRig::start(spec).await;
    let (ok, out) = s_client(rig.port(), "-tls1_1").await;
    assert!(!ok, "a TLS 1.1 client completed a handshake:\n{out}");
    let (ok, out) = s_client(rig.port(), "-tls1_2").await;
    assert!(ok, "a TLS 1.2 client could not connect:\n{out}");
    assert!(out.contains("TLSv1.2"), "{out}");
}
