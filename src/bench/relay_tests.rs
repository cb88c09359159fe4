//! The reference relay is measured only if it really relays: HAProxy, started as the
//! benchmark starts it, carries a download and an upload between the load client and
//! the in-memory upstream, plain (splice) and TLS (terminated, re-encrypted and
//! verified against the upstream's certificate). Needs `haproxy`
//! (scripts/setup-test-deps.sh installs it).

use super::bulk::{Bulk, round};
use super::env::{Env, USER};
use super::relay::{Relay, missing};

const MESSAGE: u64 = 2_000_000;

#[test]
fn haproxy_relays_downloads_and_uploads_plain_and_tls() {
    if let Some(why) = missing() {
        panic!("{why}: run scripts/setup-test-deps.sh");
    }
    let env = Env::start(MESSAGE as usize);
    let relay = Relay::start(&env).expect("haproxy starts");
    let (token, _) = env.auth.mint_tokens(USER);
    let b = Bulk {
        total: 3 * MESSAGE,
        message: MESSAGE,
        rounds: 1,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for tls in [false, true] {
        let addr = if tls { relay.tls } else { relay.plain };
        for upload in [false, true] {
            let up = if tls { &env.imaps } else { &env.imap };
            let appended = up.appended_bytes();
            let r = rt.block_on(round(&env, (addr, false), tls, upload, &b, &token));
            let (mbps, moved) = r.unwrap_or_else(|e| panic!("tls {tls}, upload {upload}: {e}"));
            assert!(mbps > 0.0);
            if upload {
                // What the upstream received, not what the client sent.
                assert_eq!(up.appended_bytes() - appended, 3 * MESSAGE, "tls {tls}");
            } else {
                // The literal bytes the client received: whole messages until
                // at least `total`.
                let want = b.total.div_ceil(env.message_len) * env.message_len;
                assert_eq!(moved, want, "tls {tls}");
            }
        }
    }
    assert!(relay.cpu() > 0.0, "the relay process did the work");
}
