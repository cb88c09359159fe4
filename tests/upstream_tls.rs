//! Upstream TLS end to end, over real sockets and real TLS, against a scriptable
//! fake upstream (no Dovecot): STARTTLS missing, refused or followed by injected bytes,
//! an IMAP `PREAUTH` greeting, capabilities learned in cleartext, and bad upstream
//! certificates are each refused before any credential is sent, with a temporary
//! error for the client and a log line saying why.

mod common;

use std::time::Duration;

use common::certs::UpstreamPki;
use common::fake_upstream::proxy_rig::{ProxyRig, UpstreamSpec};
use common::fake_upstream::scripts::{POST_TLS, PRE_TLS, Proto};
use common::fake_upstream::{FakeUpstream, Kind, Step, send};

const ALL: [Proto; 3] = [Proto::Imap, Proto::Pop3, Proto::Smtp];
/// How long the log line may take to appear after the client's reply.
const LOG_WAIT: Duration = Duration::from_secs(5);

async fn starttls_proxy(proto: Proto, fake: &FakeUpstream, pki: &UpstreamPki) -> ProxyRig {
    let mut spec = UpstreamSpec::new(proto, "starttls", fake.port());
    spec.upstream_ca = Some(pki.ca_path.clone());
    ProxyRig::start(spec).await
}

/// Logs in through `rig`, expects a temporary failure, no credential upstream and a
/// log line containing `reason`.
async fn refused(rig: &ProxyRig, fake: &FakeUpstream, reason: &str) {
    let (_conn, reply) = rig.login().await;
    assert!(
        rig.temporary_failure(&reply),
        "{:?} ({reason}): expected a temporary failure, got {reply:?}",
        rig.proto
    );
    assert!(
        !fake.credential_sent(),
        "{:?} ({reason}): a credential reached the upstream:\n{}",
        rig.proto,
        fake.received()
    );
    let line = rig
        .log_line(&["upstream login failed", reason], LOG_WAIT)
        .await;
    assert!(line.contains("WARN"), "not a warning: {line}");
}

#[tokio::test]
async fn starttls_not_offered_is_refused() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    for proto in ALL {
        let mut script = vec![proto.greeting(false)];
        script.extend(proto.capabilities_before_tls(false));
        let fake = FakeUpstream::start(script).await;
        let rig = starttls_proxy(proto, &fake, &pki).await;
        refused(&rig, &fake, "did not offer or refused STARTTLS").await;
    }
}

#[tokio::test]
async fn starttls_refused_by_the_server_is_refused() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    for proto in ALL {
        let mut script = vec![proto.greeting(true)];
        script.extend(proto.capabilities_before_tls(true));
        script.push(Step::Expect(proto.starttls_command()));
        script.push(send(proto.starttls_refused()));
        let fake = FakeUpstream::start(script).await;
        let rig = starttls_proxy(proto, &fake, &pki).await;
        refused(&rig, &fake, "STARTTLS").await;
    }
}

#[tokio::test]
async fn imap_preauth_greeting_is_refused() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    for tls in ["starttls", "none"] {
        let fake = FakeUpstream::start(vec![send(
            "* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS AUTH=XOAUTH2] already in\r\n",
        )])
        .await;
        let mut spec = UpstreamSpec::new(Proto::Imap, tls, fake.port());
        spec.upstream_ca = Some(pki.ca_path.clone());
        let rig = ProxyRig::start(spec).await;
        refused(&rig, &fake, "PREAUTH").await;
        assert_eq!(fake.received(), "", "nothing is sent to a PREAUTH server");
    }
}

#[tokio::test]
async fn bytes_injected_after_the_starttls_reply_abort_the_login() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let injected = [
        "A2 OK LOGIN done\r\n",
        "+OK logged in\r\n",
        "235 2.7.0 ok\r\n",
    ];
    for (proto, extra) in ALL.into_iter().zip(injected) {
        let mut script = vec![proto.greeting(true)];
        script.extend(proto.capabilities_before_tls(true));
        script.push(Step::Expect(proto.starttls_command()));
        // The reply and the injected line in one write, before the handshake.
        script.push(send(&format!("{}{extra}", proto.starttls_ok())));
        script.push(Step::StartTls(pki.good.server_config()));
        script.extend(proto.login_after_tls(2));
        let fake = FakeUpstream::start(script).await;
        let rig = starttls_proxy(proto, &fake, &pki).await;
        refused(&rig, &fake, "sent data after its").await;
        assert!(
            !fake.kinds().contains(&Kind::TlsEstablished),
            "{proto:?}: no handshake after an injection"
        );
    }
}

/// A well-behaved STARTTLS server: the login works, capabilities are asked again
/// after TLS, and what the server advertised in cleartext never reaches the client.
#[tokio::test]
async fn capabilities_are_asked_again_after_starttls_and_cleartext_ones_dropped() {
    common::install_crypto_provider();
    let pki = UpstreamPki::generate();
    let cfg = pki.good.server_config();
    for proto in ALL {
        let fake = FakeUpstream::start(proto.starttls_login(&cfg)).await;
        let rig = starttls_proxy(proto, &fake, &pki).await;
        let (_conn, reply) = rig.login().await;
        assert!(
            rig.logged_in(&reply),
            "{proto:?}: login failed: {reply}\n{}",
            rig.log()
        );
        let sent = fake.received();
        let (ask, times) = match proto {
            Proto::Imap => ("CAPABILITY", 1),
            Proto::Pop3 => ("CAPA", 2),
            // Probe and login connection: EHLO twice each.
            Proto::Smtp => ("EHLO", 4),
        };
        assert_eq!(
            sent.lines().filter(|l| l.contains(ask)).count(),
            times,
            "{proto:?}: capability requests:\n{sent}"
        );
        match proto {
            Proto::Imap => {
                // The greeting had them before TLS; A2 CAPABILITY comes after.
                assert!(sent.contains("A2 CAPABILITY"), "{sent}");
                assert!(
                    !reply.contains(PRE_TLS),
                    "cleartext capability leaked: {reply}"
                );
                assert!(reply.contains(POST_TLS), "post-TLS capabilities: {reply}");
            }
            Proto::Smtp => {
                let mut c = common::SmtpClient::connect(rig.port()).await;
                let ehlo = c.ehlo("client.example").await;
                assert!(
                    !ehlo.has_line(PRE_TLS),
                    "cleartext extension leaked: {ehlo:?}"
                );
                assert!(ehlo.has_line(POST_TLS), "post-TLS extensions: {ehlo:?}");
            }
            Proto::Pop3 => {}
        }
        assert!(
            !rig.log().contains(PRE_TLS),
            "{proto:?}: a cleartext capability was logged"
        );
    }
}

/// The bad certificates, each with the words its log line must contain.
fn bad_certs(pki: &UpstreamPki) -> Vec<(&'static str, common::certs::ServerCert, &'static str)> {
    vec![
        ("self-signed", pki.self_signed.clone(), "unknown issuer"),
        ("unknown CA", pki.unknown_ca.clone(), "unknown issuer"),
        ("wrong name", pki.wrong_name.clone(), "not valid for name"),
        ("expired", pki.expired.clone(), "certificate expired"),
    ]
}

/// For `proto` over `tls` ("implicit" or "starttls"): each bad certificate is refused
/// with its reason in the log, then the good one (trusted through `upstream_ca`)
/// logs in, through the same proxy.
async fn certificates(proto: Proto, tls: &'static str) {
    let pki = UpstreamPki::generate();
    let script = |cert: &common::certs::ServerCert| {
        let cfg = cert.server_config();
        if tls == "implicit" {
            proto.direct_login(Some(&cfg))
        } else {
            proto.starttls_login(&cfg)
        }
    };
    let fake = FakeUpstream::start(script(&pki.good)).await;
    let mut spec = UpstreamSpec::new(proto, tls, fake.port());
    spec.upstream_ca = Some(pki.ca_path.clone());
    let rig = ProxyRig::start(spec).await;
    for (what, cert, reason) in bad_certs(&pki) {
        fake.set_script(script(&cert));
        let before = fake.connections();
        refused(&rig, &fake, reason).await;
        let failed = fake
            .wait_for(LOG_WAIT, |e| {
                e.conn >= before && matches!(e.kind, Kind::TlsFailed(_))
            })
            .await;
        assert!(
            failed.is_some(),
            "{proto:?} {tls} {what}: the fake saw no failed handshake: {:?}",
            fake.kinds()
        );
    }
    fake.set_script(script(&pki.good));
    let (_conn, reply) = rig.login().await;
    assert!(
        rig.logged_in(&reply),
        "{proto:?} {tls}: good certificate: {reply}\n{}",
        rig.log()
    );
}

#[tokio::test]
async fn imap_implicit_tls_certificates() {
    common::install_crypto_provider();
    certificates(Proto::Imap, "implicit").await;
}

#[tokio::test]
async fn imap_starttls_certificates() {
    common::install_crypto_provider();
    certificates(Proto::Imap, "starttls").await;
}

#[tokio::test]
async fn pop3_starttls_certificates() {
    common::install_crypto_provider();
    certificates(Proto::Pop3, "starttls").await;
}

#[tokio::test]
async fn smtp_implicit_tls_certificates() {
    common::install_crypto_provider();
    certificates(Proto::Smtp, "implicit").await;
}

#[path = "upstream_tls/tls_versions.rs"]
mod tls_versions;
