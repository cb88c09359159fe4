//! Scenario 4: N concurrent logged-in idle sessions through the proxy; the proxy's
//! RSS per session, plain↔plain and TLS↔TLS; then every session sends NOOP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};

use super::client::Client;
use super::env::{Env, PASSWORD, Proxy, USER};
use super::proc::{ClientMeter, ms, percentile};
use super::report::{Row, with_client};

/// Run against a freshly started proxy, so freed memory of earlier scenarios does not
/// hide the cost of new sessions.
pub async fn run(env: &Env, p: &Proxy, n: usize, tls: bool) -> std::io::Result<Vec<Row>> {
    let mut rows = Vec::new();
    {
        let addr = if tls { p.tls } else { p.plain };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = p.rss_kib();
        let (go_tx, go_rx) = watch::channel(false);
        let opening = Arc::new(Semaphore::new(64));
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<bool>(n);
        let t = Instant::now();
        let meter = ClientMeter::start();
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (cfg, opening, ready, mut go) = (
                env.tls.clone(),
                opening.clone(),
                ready_tx.clone(),
                go_rx.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let permit = opening.acquire_owned().await;
                let c = async {
                    let mut c = Client::connect_small(addr, tls.then_some(&cfg)).await?;
                    c.login(USER, PASSWORD).await?;
                    Ok::<_, std::io::Error>(c)
                }
                .await;
                drop(permit);
                let _ = ready.send(c.is_ok()).await;
                let mut c = c?;
                let _ = go.wait_for(|g| *g).await;
                let t = Instant::now();
                c.command("NOOP").await?;
                Ok::<_, std::io::Error>(ms(t.elapsed()))
            }));
        }
        drop(ready_tx);
        let mut opened = 0;
        // Every task reports once (it keeps its sender until the NOOP).
        for _ in 0..n {
            opened += usize::from(ready_rx.recv().await.unwrap_or(false));
        }
        let open_secs = t.elapsed().as_secs_f64();
        let busy = meter.busy();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = p.rss_kib();
        let per = (after.saturating_sub(before)) as f64 / opened.max(1) as f64;
        let meter = ClientMeter::start();
        let _ = go_tx.send(true);
        let mut lat = Vec::new();
        for task in tasks {
            if let Ok(Ok(l)) = task.await {
                lat.push(l);
            }
        }
        let noop_busy = meter.busy();
        let label = if tls { "TLS<->TLS" } else { "plain<->plain" };
        let limit = if tls { 64.0 } else { 20.0 };
        rows.push(
            Row::new(
                "4 idle sessions",
                &format!("{label} RSS/session"),
                "KiB",
                None,
                per,
            )
            .target(&format!("<= {limit} KiB"), per <= limit)
            .note(with_client(
                format!(
                    "{opened}/{n} sessions opened in {open_secs:.1}s; proxy RSS {before}->{after} KiB"
                ),
                busy,
            )),
        );
        rows.push(
            Row::new(
                "4 idle sessions",
                &format!("{label} NOOP answers"),
                "count",
                None,
                lat.len() as f64,
            )
            .target(&format!("all {n}"), lat.len() == n)
            .note(with_client(
                format!(
                    "NOOP p50 {:.1} ms, p99 {:.1} ms",
                    percentile(&lat, 50.0),
                    percentile(&lat, 99.0)
                ),
                noop_busy,
            )),
        );
    }
    Ok(rows)
}
