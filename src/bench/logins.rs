//! Scenario 3: connect → LOGIN (proxy) / AUTHENTICATE XOAUTH2 (direct) → NOOP →
//! LOGOUT, sequential and 32 in parallel, alternating rounds.

use std::sync::Arc;
use std::time::Instant;

use super::client::Client;
use super::env::{Env, PASSWORD, Proxy, USER};
use super::proc::{ClientMeter, median, ms, percentile};
use super::report::{Row, with_client};

async fn one(addr: std::net::SocketAddr, token: Option<Arc<String>>) -> std::io::Result<f64> {
    let t = Instant::now();
    let mut c = Client::connect_small(addr, None).await?;
    match &token {
        Some(tok) => c.xoauth2(USER, tok).await?,
        None => c.login(USER, PASSWORD).await?,
    };
    c.command("NOOP").await?;
    c.logout().await?;
    Ok(ms(t.elapsed()))
}

/// `n` logins with `par` at once; (logins/s, latencies in ms).
pub async fn batch(
    addr: std::net::SocketAddr,
    token: Option<Arc<String>>,
    n: usize,
    par: usize,
) -> std::io::Result<(f64, Vec<f64>)> {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..par {
        let token = token.clone();
        let count = n / par + usize::from(w < n % par);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(count);
            for _ in 0..count {
                lat.push(one(addr, token.clone()).await?);
            }
            Ok::<_, std::io::Error>(lat)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await.map_err(std::io::Error::other)??);
    }
    Ok((n as f64 / t.elapsed().as_secs_f64(), all))
}

pub async fn run(
    env: &Env,
    p: &Proxy,
    token: &str,
    n: usize,
    rounds: usize,
) -> std::io::Result<Vec<Row>> {
    let token = Arc::new(token.to_string());
    // Warm-up: the first proxy login pays the Argon2 check, later ones hit the cache.
    one(p.plain, None).await?;
    let mut rows = Vec::new();
    for par in [1, 32] {
        let (mut dr, mut pr, mut dl, mut pl) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let cpu0 = p.cpu();
        let mut busy = 0.0f64;
        for _ in 0..rounds {
            let m = ClientMeter::start();
            let (r, l) = batch(env.imap.addr(), Some(token.clone()), n, par).await?;
            busy = busy.max(m.busy());
            dr.push(r);
            dl.extend(l);
            let m = ClientMeter::start();
            let (r, l) = batch(p.plain, None, n, par).await?;
            busy = busy.max(m.busy());
            pr.push(r);
            pl.extend(l);
        }
        let cpu = p.cpu() - cpu0;
        let label = if par == 1 {
            "sequential"
        } else {
            "32 parallel"
        };
        let per_s = Row::new(
            "3 logins",
            &format!("{label} rate"),
            "logins/s",
            Some(median(&dr)),
            median(&pr),
        )
        .note(with_client(
            format!("proxy {:.0} us CPU/login", cpu / (n * rounds) as f64 * 1e6),
            busy,
        ));
        rows.push(if par == 32 {
            let v = median(&pr);
            per_s.target(">= 200/s", v >= 200.0)
        } else {
            per_s
        });
        let added = percentile(&pl, 50.0) - percentile(&dl, 50.0);
        let p50 = Row::new(
            "3 logins",
            &format!("{label} p50"),
            "ms",
            Some(percentile(&dl, 50.0)),
            percentile(&pl, 50.0),
        );
        rows.push(if par == 1 {
            p50.target("added <= 1 ms", added <= 1.0)
                .note(format!("added {added:.3} ms"))
        } else {
            p50
        });
        rows.push(Row::new(
            "3 logins",
            &format!("{label} p99"),
            "ms",
            Some(percentile(&dl, 99.0)),
            percentile(&pl, 99.0),
        ));
    }
    Ok(rows)
}
