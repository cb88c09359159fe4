//! Scenario 5: many accounts whose tokens expire within the same minute, clients
//! logging in throughout. Counts refresh grants at the authorization server and per
//! account (the store's `last_refresh`), and the login latency of accounts whose
//! token was fresh versus the logins that had to refresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oauth_mail_proxy::oauth::TokenStore;

use super::client::Client;
use super::env::Env;
use super::proc::{ClientMeter, ms, percentile};
use super::report::{Row, with_client};

pub const PASSWORD: &str = "refresh-bench-pw";
const MARGIN: u64 = 5;

pub fn user(i: usize) -> String {
    format!("r{i}@example.com")
}

/// A deliberately cheap Argon2id hash (m=1 MiB, t=1) so 1,000 first logins do not
/// dominate the scenario; the verdict cache makes later logins cheap anyway.
pub fn cheap_hash() -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"bench-salt-16byt").expect("salt");
    let params = argon2::Params::new(1024, 1, 1, None).expect("params");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(PASSWORD.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// Stores tokens for `accounts` users expiring `lifetime` from now (spread over 10 s).
/// Returns each account's refresh threshold (unix seconds).
pub fn seed(env: &Env, accounts: usize, lifetime: u64) -> Vec<u64> {
    let store = TokenStore::open(&env.state_dir()).expect("store");
    env.auth
        .set_token_lifetime(Duration::from_secs(lifetime + 10));
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    let out = (0..accounts)
        .map(|i| {
            let exp = now + lifetime + (i % 10) as u64;
            env.store_tokens(&store, &user(i), exp);
            exp - MARGIN
        })
        .collect();
    // Tokens from refreshes live long: one refresh per account in this run.
    env.auth.set_token_lifetime(Duration::from_secs(3600));
    out
}

pub fn margin() -> String {
    format!("{MARGIN}s")
}

pub async fn run(
    env: &Env,
    addr: std::net::SocketAddr,
    thresholds: Vec<u64>,
    run_for: Duration,
) -> std::io::Result<Vec<Row>> {
    let accounts = thresholds.len();
    let grants0 = env.auth.grants("refresh_token");
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Instant::now() + run_for;
    let meter = ClientMeter::start();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < stop {
                let i = next.fetch_add(1, Ordering::Relaxed) % accounts;
                let started = oauth_mail_proxy::oauth::outcome::unix_now();
                let t = Instant::now();
                let r = async {
                    let mut c = Client::connect_small(addr, None).await?;
                    c.login(&user(i), PASSWORD).await?;
                    c.command("NOOP").await?;
                    c.logout().await
                }
                .await;
                out.push((i, started, ms(t.elapsed()), r.is_ok()));
            }
            out
        }));
    }
    let mut logins = Vec::new();
    for t in tasks {
        logins.extend(t.await.map_err(std::io::Error::other)?);
    }
    let busy = meter.busy();
    let failed = logins.iter().filter(|l| !l.3).count();
    // Per account, the first login at or after its refresh threshold pays the refresh.
    logins.sort_by_key(|l| l.1);
    let mut refreshed_seen = vec![false; accounts];
    let (mut fresh, mut refreshing) = (Vec::new(), Vec::new());
    for (i, started, lat, _) in &logins {
        if *started >= thresholds[*i] && !refreshed_seen[*i] {
            refreshed_seen[*i] = true;
            refreshing.push(*lat);
        } else {
            fresh.push(*lat);
        }
    }
    let grants = env.auth.grants("refresh_token") - grants0;
    let store = TokenStore::open(&env.state_dir()).expect("store");
    let per_account = (0..accounts)
        .filter(|i| {
            store
                .load(&user(*i))
                .ok()
                .flatten()
                .is_some_and(|r| r.last_refresh.is_some())
        })
        .count();
    let max_fresh = percentile(&fresh, 100.0);
    Ok(vec![
        Row::new(
            "5 token refresh",
            "refresh grants",
            "count",
            None,
            grants as f64,
        )
        .target(&format!("== {accounts}"), grants as usize == accounts)
        .note(format!(
            "{per_account}/{accounts} accounts refreshed; {} logins, {failed} failed",
            logins.len()
        )),
        Row::new(
            "5 token refresh",
            "fresh-token login max",
            "ms",
            None,
            max_fresh,
        )
        .note(with_client(
            format!(
                "p50 {:.1} ms, p99 {:.1} ms over {} logins",
                percentile(&fresh, 50.0),
                percentile(&fresh, 99.0),
                fresh.len()
            ),
            busy,
        )),
        Row::new(
            "5 token refresh",
            "refreshing login p50",
            "ms",
            None,
            percentile(&refreshing, 50.0),
        )
        .note(format!(
            "max {:.1} ms over {} logins",
            percentile(&refreshing, 100.0),
            refreshing.len()
        )),
    ])
}
