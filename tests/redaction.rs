//! No secret ever reaches the log, IMAP: the real binary runs `serve --log trace`
//! (everything at trace level, dependencies included) while clients log in every way
//! the proxy accepts (LOGIN quoted and as a literal, AUTHENTICATE PLAIN with SASL-IR
//! and with a continuation), get a password wrong, and outlive a short-lived access
//! token so it is refreshed at the token endpoint; a revoked grant ends in an upstream
//! error challenge. Alice logs in upstream with XOAUTH2, Bob with OAUTHBEARER. Then
//! every secret involved (see `common::canary`), in every encoding it travelled in, is
//! searched for in everything the process wrote and everything the clients received.
//!
//! POP3 and SMTP: `tests/redaction_mail.rs`; the `login` command:
//! `tests/redaction_login.rs`.

mod common;

use std::time::Duration;

use common::canary::{ALICE, BOB, CanaryRig, HOUR, SHORT};
use common::{ImapClient, ImapResponse, plain};

/// SELECT, FETCH and LOGOUT on a logged-in connection.
async fn use_mailbox(mut c: ImapClient) {
    assert_eq!(c.select("INBOX").await, 1);
    let body = c.fetch_body(1).await;
    assert!(body.ends_with(b"First message.\r\n"), "{body:?}");
    c.logout().await;
}

/// Records `r` and checks it is a successful login.
fn logged_in(rig: &mut CanaryRig, r: &ImapResponse, what: &str) {
    rig.record(what, r);
    assert!(r.tagged.starts_with("OK [CAPABILITY"), "{what}: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_log_of_imap_logins_holds_no_secret() {
    let mut rig = CanaryRig::start().await;
    let (password, wrong) = (rig.password.clone(), rig.wrong.clone());
    // Bob's token outlives the test; Alice's expires every two seconds (refresh
    // margin 1 s), so her logins refresh it at the token endpoint.
    rig.store_tokens(BOB, HOUR);
    rig.store_tokens(ALICE, SHORT);
    rig.plant_store_key();

    let (proxy, ports) = rig.serve(&[rig.upstream("imap")]).await;
    let port = ports[0];
    let mut logins = 0;

    // LOGIN with a quoted string.
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {ALICE} \"{password}\"")).await;
    logged_in(&mut rig, &r, "LOGIN quoted");
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // LOGIN with the password as a synchronising literal.
    let mut c = ImapClient::connect(port).await;
    let cmd = format!("LOGIN {ALICE} {{{}}}", password.len());
    let r = c.command_with(&cmd, &[&password]).await;
    assert_eq!(r.continuations.len(), 1, "{r:?}");
    logged_in(&mut rig, &r, "LOGIN literal");
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // AUTHENTICATE PLAIN with SASL-IR.
    let ir = plain(ALICE, &password);
    rig.secrets.add_payload("PLAIN response", &ir);
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("AUTHENTICATE PLAIN {ir}")).await;
    logged_in(&mut rig, &r, "AUTHENTICATE PLAIN SASL-IR");
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
    logged_in(&mut rig, &r, "AUTHENTICATE PLAIN continuation");
    use_mailbox(c).await;
    logins += 1;
    rig.collect_tokens();

    // A wrong password, with LOGIN (quoted and literal) and AUTHENTICATE PLAIN, then
    // the right one on the same connection.
    let bad = plain(ALICE, &wrong);
    rig.secrets
        .add_payload("PLAIN response with the wrong password", &bad);
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {ALICE} \"{wrong}\"")).await;
    rig.record("wrong LOGIN", &r);
    assert!(r.tagged.starts_with("NO [AUTHENTICATIONFAILED]"), "{r:?}");
    let r = c.command_with("AUTHENTICATE PLAIN", &[&bad]).await;
    rig.record("wrong AUTHENTICATE", &r);
    assert!(r.tagged.starts_with("NO [AUTHENTICATIONFAILED]"), "{r:?}");
    let r = c.command(&format!("LOGIN {BOB} \"{password}\"")).await;
    logged_in(&mut rig, &r, "LOGIN after failures (OAUTHBEARER upstream)");
    use_mailbox(c).await;
    logins += 1;
    let mut c = ImapClient::connect(port).await;
    let cmd = format!("LOGIN {BOB} {{{}}}", wrong.len());
    let r = c.command_with(&cmd, &[&wrong]).await;
    rig.record("wrong LOGIN literal", &r);
    assert!(r.tagged.starts_with("NO [AUTHENTICATIONFAILED]"), "{r:?}");
    c.logout().await;
    rig.collect_tokens();

    // Let Alice's token expire: the next login refreshes it at the token endpoint.
    tokio::time::sleep(SHORT + Duration::from_millis(500)).await;
    let refreshes = rig.auth.grants("refresh_token");
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {ALICE} \"{password}\"")).await;
    logged_in(&mut rig, &r, "LOGIN after expiry");
    assert!(
        rig.auth.grants("refresh_token") > refreshes,
        "the expired token was refreshed"
    );
    use_mailbox(c).await;
    logins += 1;
    let fields = rig.collect_tokens();
    for f in ["refresh_token", "grant_type"] {
        assert!(fields.iter().any(|x| x == f), "no {f} in {fields:?}");
    }

    // Bob's grant is revoked: Dovecot rejects the access token (an error challenge),
    // the refresh is refused with invalid_grant, and the client is told to log in.
    rig.auth.revoke_user(BOB);
    let mut c = ImapClient::connect(port).await;
    let r = c.command(&format!("LOGIN {BOB} \"{password}\"")).await;
    rig.record("LOGIN revoked", &r);
    assert!(
        r.tagged.starts_with("NO [AUTHENTICATIONFAILED]") && r.tagged.contains("re-authoris"),
        "{r:?}"
    );
    c.logout().await;
    rig.collect_tokens();

    rig.scrape_admin().await;
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
        3,
        "{output}"
    );
    for evidence in [
        "access token refreshed",
        "upstream rejected the access token",
        "needs re-authorisation",
        " TRACE ",
        "rustls::",
        "hyper",
        "reqwest",
    ] {
        assert!(output.contains(evidence), "no {evidence:?} in:\n{output}");
    }
    rig.assert_no_leaks(&output);
    // The secrets were collected: both accounts' tokens, at least one refresh.
    assert!(rig.secrets.len() >= 30, "{}", rig.secrets.len());
}
