//! `--soak MINUTES`: mixed load against one proxy for the given time, sampling the
//! proxy's RSS every 10 s: idle sessions that NOOP every 30 s, a steady stream of
//! logins, small partial FETCHes, 1 MB APPENDs, 10 MB SMTP messages and, with
//! Dovecot, FETCHes of 50 real messages. Memory must stay within ±5 % of its level at
//! the end of the warm-up (a fifth of the run, at most 5 minutes).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::Client;
use super::env::{Env, PASSWORD, Proxy, USER};
use super::proc::{ClientMeter, within};
use super::report::{Row, with_client};
use super::smtp::{Smtp, chunk};

const KINDS: [&str; 6] = ["login", "fetch", "append", "smtp", "dovecot", "noop"];
const IDLE: usize = 200;

#[derive(Default)]
struct Counts {
    ok: [AtomicU64; 6],
    failed: AtomicU64,
}

impl Counts {
    fn add(&self, kind: usize, r: io::Result<()>) {
        match r {
            Ok(()) => self.ok[kind].fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

async fn login(p: &Proxy) -> io::Result<()> {
    let mut c = Client::connect_small(p.plain, None).await?;
    c.login(USER, PASSWORD).await?;
    c.command("NOOP").await?;
    c.logout().await
}

async fn fetches(p: &Proxy) -> io::Result<()> {
    let mut c = Client::connect(p.plain, None).await?;
    c.login(USER, PASSWORD).await?;
    c.command("EXAMINE INBOX").await?;
    for _ in 0..20 {
        c.command("FETCH 1 BODY.PEEK[]<0.65536>").await?;
    }
    c.logout().await
}

async fn append(env: &Env, p: &Proxy) -> io::Result<()> {
    let mut c = Client::connect(p.tls, Some(&env.tls)).await?;
    c.login(USER, PASSWORD).await?;
    c.append(1_000_000, &vec![b'x'; 64 * 1024]).await?;
    c.logout().await
}

async fn smtp(p: &Proxy, chunk: &[u8]) -> io::Result<()> {
    let mut c = Smtp::connect(p.smtp, None).await?;
    c.auth_plain(USER, PASSWORD).await?;
    c.message(chunk, 10_000_000 / chunk.len()).await?;
    c.quit().await
}

async fn dovecot(env: &Env, p: &Proxy) -> io::Result<()> {
    let Some((_, tls)) = p.dovecot else {
        return Ok(());
    };
    let mut c = Client::connect(tls, Some(&env.tls)).await?;
    c.login(USER, PASSWORD).await?;
    c.command("EXAMINE INBOX").await?;
    c.command("FETCH 1:50 (FLAGS BODY.PEEK[])").await?;
    c.logout().await
}

/// Repeats `op` with `pause` between runs until `stop`, counting results.
async fn repeat<F, Fut>(stop: Instant, pause: Duration, counts: &Counts, kind: usize, op: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = io::Result<()>>,
{
    while Instant::now() < stop {
        counts.add(kind, within(KINDS[kind], op()).await);
        tokio::time::sleep(pause).await;
    }
}

/// Idle sessions that send NOOP every 30 s until `stop`.
async fn idle(p: &Proxy, stop: Instant, counts: &Counts) {
    let one = async {
        let mut c = Client::connect_small(p.plain, None).await?;
        c.login(USER, PASSWORD).await?;
        while Instant::now() + Duration::from_secs(30) < stop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            c.command("NOOP").await?;
            counts.ok[5].fetch_add(1, Ordering::Relaxed);
        }
        c.logout().await
    };
    if one.await.is_err() {
        counts.failed.fetch_add(1, Ordering::Relaxed);
    }
}

pub struct Soak {
    pub rows: Vec<Row>,
    pub samples: Value,
}

pub async fn run(env: &Env, p: &Proxy, minutes: f64) -> io::Result<Soak> {
    let total = Duration::from_secs_f64(minutes * 60.0);
    let warmup = (total / 5).min(Duration::from_secs(300));
    let start = Instant::now();
    let stop = start + total;
    let counts = Counts::default();
    let chunk = chunk();
    let meter = ClientMeter::start();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    let sampler = async {
        while Instant::now() < stop {
            let rss = p.rss_kib();
            let at = start.elapsed().as_secs_f64();
            eprintln!("  soak {at:>6.0}s: proxy RSS {rss} KiB");
            samples.push((at, rss));
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        samples.push((start.elapsed().as_secs_f64(), p.rss_kib()));
    };
    let ms = Duration::from_millis;
    let idle_all = futures_join_all((0..IDLE).map(|_| idle(p, stop, &counts)));
    tokio::join!(
        sampler,
        idle_all,
        repeat(stop, ms(10), &counts, 0, || login(p)),
        repeat(stop, ms(10), &counts, 0, || login(p)),
        repeat(stop, ms(50), &counts, 1, || fetches(p)),
        repeat(stop, ms(500), &counts, 2, || append(env, p)),
        repeat(stop, ms(1000), &counts, 3, || smtp(p, &chunk)),
        repeat(stop, ms(2000), &counts, 4, || dovecot(env, p)),
    );
    let busy = meter.busy();
    let after: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| *t >= warmup.as_secs_f64())
        .map(|s| s.1)
        .collect();
    let base = after.first().copied().unwrap_or(0) as f64;
    let (max, min) = (
        after.iter().copied().max().unwrap_or(0) as f64,
        after.iter().copied().min().unwrap_or(0) as f64,
    );
    let last = after.last().copied().unwrap_or(0) as f64;
    let dev = |v: f64| {
        if base > 0.0 {
            (v / base - 1.0) * 100.0
        } else {
            0.0
        }
    };
    let worst = dev(max).max(-dev(min));
    let ops: Vec<String> = KINDS
        .iter()
        .zip(&counts.ok)
        .map(|(k, n)| format!("{k} {}", n.load(Ordering::Relaxed)))
        .collect();
    let failed = counts.failed.load(Ordering::Relaxed);
    let first = samples.first().map_or(0, |s| s.1);
    let rows = vec![
        Row::new("6 soak", "proxy RSS after warm-up", "KiB", None, base).note(format!(
            "{:.0} s warm-up; first {first}, last {last}, max {max}, min {min} KiB over {} samples",
            warmup.as_secs_f64(),
            samples.len()
        )),
        Row::new("6 soak", "RSS max deviation", "%", None, worst)
            .target("within ±5 %", worst <= 5.0 && !after.is_empty())
            .note(format!("last {:+.1} %", dev(last))),
        Row::new("6 soak", "failed operations", "count", None, failed as f64)
            .target("== 0", failed == 0)
            .note(with_client(ops.join(", "), busy)),
    ];
    let samples = json!(
        samples
            .iter()
            .map(|(t, k)| json!([t, k]))
            .collect::<Vec<_>>()
    );
    Ok(Soak { rows, samples })
}

/// Awaits every future of `it` concurrently on this task.
async fn futures_join_all<F: std::future::Future<Output = ()>>(it: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = it.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
