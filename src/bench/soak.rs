//! `--soak MINUTES`: mixed load against one proxy for the given time, sampling the
//! proxy's RSS every 10 s: idle sessions that NOOP every 30 s, a steady stream of
//! logins, small partial FETCHes, 1 MB APPENDs, 10 MB SMTP messages and, with
//! Dovecot, FETCHes of 50 real messages.
//!
//! Flat memory (±5 %) is judged on 5-minute window medians after the warm-up (a sixth
//! of the run, at most 10 minutes): each window's median RSS against the first
//! window's. A single 10 s sample catches whatever is in flight at that moment (a
//! 10 MB message, a burst of logins), so the largest single-sample deviation is
//! reported beside it, not judged. Failures are counted per kind of operation, and
//! the first few errors are quoted.

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

/// Errors quoted in the report.
const QUOTED: usize = 5;

struct Counts {
    start: Instant,
    ok: [AtomicU64; 6],
    failed: [AtomicU64; 6],
    /// The first [`QUOTED`] errors: (seconds since the start, kind, message).
    errors: std::sync::Mutex<Vec<(f64, usize, String)>>,
}

impl Counts {
    fn new(start: Instant) -> Counts {
        Counts {
            start,
            ok: Default::default(),
            failed: Default::default(),
            errors: Default::default(),
        }
    }
    fn add(&self, kind: usize, r: io::Result<()>) {
        match r {
            Ok(()) => {
                self.ok[kind].fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed[kind].fetch_add(1, Ordering::Relaxed);
                let mut errors = self.errors.lock().expect("not poisoned");
                if errors.len() < QUOTED {
                    errors.push((self.start.elapsed().as_secs_f64(), kind, e.to_string()));
                }
            }
        }
    }
    fn failed(&self) -> u64 {
        self.failed.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }
}

/// What the RSS samples say about flat memory.
#[derive(Debug, PartialEq)]
pub struct Flatness {
    /// Median RSS of each whole window after the warm-up (KiB).
    pub windows: Vec<f64>,
    /// Largest deviation of a window median from the first one (%).
    pub drift: f64,
    /// Largest deviation of a single sample after the warm-up from the first
    /// window's median (%).
    pub peak: f64,
}

fn median_of(v: &mut [u64]) -> f64 {
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    }
}

/// Judges `(seconds, KiB)` samples: whole windows of `window` seconds from `warmup`
/// on (a last partial window and windows without samples are left out).
pub fn flatness(samples: &[(f64, u64)], warmup: f64, window: f64) -> Flatness {
    let end = samples.last().map_or(0.0, |s| s.0);
    let whole = ((end - warmup) / window).floor().max(0.0) as usize;
    let windows: Vec<f64> = (0..whole)
        .filter_map(|i| {
            let from = warmup + i as f64 * window;
            let mut v: Vec<u64> = samples
                .iter()
                .filter(|(t, _)| *t >= from && *t < from + window)
                .map(|s| s.1)
                .collect();
            (!v.is_empty()).then(|| median_of(&mut v))
        })
        .collect();
    let level = windows.first().copied().unwrap_or(0.0);
    let dev = |v: f64| {
        if level > 0.0 {
            (v / level - 1.0).abs() * 100.0
        } else {
            0.0
        }
    };
    let drift = windows.iter().map(|w| dev(*w)).fold(0.0, f64::max);
    let peak = samples
        .iter()
        .filter(|(t, _)| *t >= warmup)
        .map(|s| dev(s.1 as f64))
        .fold(0.0, f64::max);
    Flatness {
        windows,
        drift,
        peak,
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
    if let Err(e) = one.await {
        counts.add(5, Err(e));
    }
}

pub struct Soak {
    pub rows: Vec<Row>,
    pub samples: Value,
}

pub async fn run(env: &Env, p: &Proxy, minutes: f64) -> io::Result<Soak> {
    let total = Duration::from_secs_f64(minutes * 60.0);
    let warmup = (total / 6).min(Duration::from_secs(600));
    // 5-minute windows; shorter runs get up to 6 windows of at least 3 samples.
    let window = ((total - warmup) / 6).clamp(Duration::from_secs(30), Duration::from_secs(300));
    let start = Instant::now();
    let stop = start + total;
    let counts = Counts::new(start);
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
    let f = flatness(&samples, warmup.as_secs_f64(), window.as_secs_f64());
    let level = f.windows.first().copied().unwrap_or(0.0);
    let kib = |v: &[f64]| {
        v.iter()
            .map(|w| format!("{w:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let ops: Vec<String> = KINDS
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let (ok, bad) = (
                counts.ok[i].load(Ordering::Relaxed),
                counts.failed[i].load(Ordering::Relaxed),
            );
            if bad > 0 {
                format!("{k} {ok} ok / {bad} failed")
            } else {
                format!("{k} {ok}")
            }
        })
        .collect();
    let failed = counts.failed();
    let errors: Vec<String> = counts
        .errors
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|(t, k, e)| format!("{t:.0} s {}: {e}", KINDS[*k]))
        .collect();
    let (first, max, min) = (
        samples.first().map_or(0, |s| s.1),
        samples.iter().map(|s| s.1).max().unwrap_or(0),
        samples.iter().map(|s| s.1).min().unwrap_or(0),
    );
    let mut rows = vec![
        Row::new("6 soak", "proxy RSS, first window", "KiB", None, level).note(format!(
            "{:.0} s warm-up, {:.0} s windows; all samples: first {first}, max {max}, min {min} KiB ({} samples)",
            warmup.as_secs_f64(),
            window.as_secs_f64(),
            samples.len()
        )),
        Row::new("6 soak", "window median drift", "%", None, f.drift)
            .target("within ±5 %", f.drift <= 5.0 && f.windows.len() >= 2)
            .note(format!("window medians (KiB): {}", kib(&f.windows))),
        Row::new("6 soak", "largest single sample", "%", None, f.peak)
            .note("one 10 s sample against the first window's median: in-flight work, not judged"),
        Row::new("6 soak", "failed operations", "count", None, failed as f64)
            .target("== 0", failed == 0)
            .note(with_client(ops.join(", "), busy)),
    ];
    if !errors.is_empty() {
        rows.push(
            Row::new("6 soak", "first errors", "-", None, errors.len() as f64)
                .note(errors.join(" | ")),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatness_judges_window_medians_and_reports_the_peak() {
        // Warm-up to 100 s, then three 100 s windows around 1000 KiB with one spike.
        let mut s: Vec<(f64, u64)> = (0..10).map(|i| (i as f64 * 10.0, 500)).collect();
        s.extend((10..40).map(|i| (i as f64 * 10.0, if i == 25 { 1300 } else { 1000 + i % 3 })));
        s.push((405.0, 1000)); // a partial window: left out
        let f = flatness(&s, 100.0, 100.0);
        assert_eq!(
            f.windows,
            vec![1001.0, 1001.5, 1001.0],
            "the spike moves no median"
        );
        assert!(f.drift < 0.1, "{f:?}");
        assert!((f.peak - 29.87).abs() < 0.01, "{f:?}");
        // Growth shows as drift.
        let grow: Vec<(f64, u64)> = (0..41).map(|i| (i as f64 * 10.0, 1000 + 10 * i)).collect();
        let f = flatness(&grow, 100.0, 100.0);
        assert_eq!(f.windows.len(), 3);
        assert!(f.drift > 5.0, "{f:?}");
    }
}
