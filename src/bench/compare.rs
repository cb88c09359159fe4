//! `--compare-emailproxy`: download, logins and idle sessions through
//! oauth-mail-proxy and through email-oauth2-proxy in the same run, both with a plain
//! client side and implicit TLS to the same MiniImap upstream (emailproxy always
//! speaks TLS upstream). Rounds alternate direct (TLS, XOAUTH2), ours, theirs.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::client::Client;
use super::emailproxy::EmailProxy;
use super::env::{Env, PASSWORD, Proxy, USER};
use super::logins::batch;
use super::proc::{ClientMeter, median, ms, percentile};
use super::report::{Row, with_client};

const NAME: &str = "C vs emailproxy";
const OURS: &str = "oauth-mail-proxy";
const THEIRS: &str = "email-oauth2-proxy";
/// Connections opened at once (emailproxy's listen backlog is 5).
const PAR: usize = 4;
/// Any step that takes longer has stalled.
const LIMIT: Duration = Duration::from_secs(120);

pub struct Volumes {
    pub download: u64,
    pub rounds: usize,
    pub sequential: usize,
    pub parallel: usize,
    pub sessions: usize,
}

/// One download round (MB/s): plain + LOGIN to a proxy, or TLS + XOAUTH2 direct.
async fn download(env: &Env, addr: Option<SocketAddr>, total: u64, token: &str) -> io::Result<f64> {
    let mut c = match addr {
        Some(a) => {
            let mut c = Client::connect(a, None).await?;
            c.login(USER, PASSWORD).await?;
            c
        }
        None => {
            let mut c = Client::connect(env.imaps.addr(), Some(&env.tls)).await?;
            c.xoauth2(USER, token).await?;
            c
        }
    };
    c.command("SELECT INBOX").await?;
    let t = Instant::now();
    let mut moved = 0;
    while moved < total {
        c.command("FETCH 1 BODY.PEEK[]").await?;
        moved += c.literal_bytes;
    }
    let secs = t.elapsed().as_secs_f64();
    c.logout().await?;
    Ok(moved as f64 / 1e6 / secs)
}

/// `n` logged-in idle sessions to `addr`: (RSS growth per session in KiB of the
/// process `rss` reads, NOOPs answered, NOOP p99 ms, opening seconds).
async fn idle(addr: SocketAddr, n: usize, rss: &dyn Fn() -> u64) -> (f64, usize, f64, f64) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss();
    let t = Instant::now();
    let mut open = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(PAR) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|_| {
                tokio::spawn(tokio::time::timeout(LIMIT, async move {
                    let mut c = Client::connect_small(addr, None).await?;
                    c.login(USER, PASSWORD).await?;
                    Ok::<_, io::Error>(c)
                }))
            })
            .collect();
        for task in tasks {
            if let Ok(Ok(Ok(c))) = task.await {
                open.push(c);
            }
        }
    }
    let open_secs = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per = rss().saturating_sub(before) as f64 / open.len().max(1) as f64;
    let tasks: Vec<_> = open
        .into_iter()
        .map(|mut c| {
            tokio::spawn(tokio::time::timeout(LIMIT, async move {
                let t = Instant::now();
                c.command("NOOP").await?;
                let l = ms(t.elapsed());
                let _ = c.logout().await;
                Ok::<_, io::Error>(l)
            }))
        })
        .collect();
    let mut lat = Vec::new();
    for task in tasks {
        if let Ok(Ok(Ok(l))) = task.await {
            lat.push(l);
        }
    }
    (per, lat.len(), percentile(&lat, 99.0), open_secs)
}

pub async fn run(
    env: &Env,
    p: &Proxy,
    ep: &EmailProxy,
    v: &Volumes,
    token: &str,
) -> io::Result<Vec<Row>> {
    let mut rows = Vec::new();
    // Download: direct, ours, theirs in turn.
    let (mut d, mut o, mut t) = (Vec::new(), Vec::new(), Vec::new());
    let (mut o_cpu, mut t_cpu, mut busy) = (0.0, 0.0, 0.0f64);
    for _ in 0..v.rounds {
        let m = ClientMeter::start();
        d.push(download(env, None, v.download, token).await?);
        busy = busy.max(m.busy());
        let (c0, m) = (p.cpu(), ClientMeter::start());
        o.push(download(env, Some(p.plain_to_tls), v.download, token).await?);
        (o_cpu, busy) = (o_cpu + p.cpu() - c0, busy.max(m.busy()));
        let (c0, m) = (ep.cpu(), ClientMeter::start());
        let theirs = tokio::time::timeout(LIMIT, download(env, Some(ep.addr), v.download, token));
        t.push(
            theirs
                .await
                .map_err(|_| io::Error::other("emailproxy download stalled"))??,
        );
        (t_cpu, busy) = (t_cpu + ep.cpu() - c0, busy.max(m.busy()));
    }
    let gb = v.download as f64 * v.rounds as f64 / 1e9;
    for (who, xs, cpu) in [(OURS, &o, o_cpu), (THEIRS, &t, t_cpu)] {
        rows.push(
            Row::new(
                NAME,
                &format!("download plain->TLS {who}"),
                "MB/s",
                Some(median(&d)),
                median(xs),
            )
            .note(with_client(format!("{:.2} CPU s/GB", cpu / gb), busy)),
        );
    }
    // Logins: sequential and 32 in parallel, ours then theirs.
    // emailproxy listens with a backlog of 5: with more connections at once, the
    // surplus completes the handshake on the client side but is never accepted.
    for (label, n, par) in [
        ("sequential", v.sequential, 1),
        ("4 parallel", v.parallel, PAR),
    ] {
        for (who, addr, pid) in [(OURS, p.plain_to_tls, p.pid()), (THEIRS, ep.addr, ep.pid())] {
            let (c0, m) = (super::proc::cpu(pid), ClientMeter::start());
            let (rate, lat) = tokio::time::timeout(LIMIT, batch(addr, None, n, par))
                .await
                .map_err(|_| io::Error::other(format!("{who}: logins stalled for {LIMIT:?}")))??;
            let cpu = (super::proc::cpu(pid) - c0) / n as f64;
            rows.push(
                Row::new(
                    NAME,
                    &format!("logins {label} {who}"),
                    "logins/s",
                    None,
                    rate,
                )
                .note(with_client(
                    format!(
                        "p50 {:.1} ms, p99 {:.1} ms, {:.1} ms CPU/login, {n} logins",
                        percentile(&lat, 50.0),
                        percentile(&lat, 99.0),
                        cpu * 1e3
                    ),
                    m.busy(),
                )),
            );
        }
    }
    // Idle sessions.
    let ours_rss = || p.rss_kib();
    let theirs_rss = || ep.rss_kib();
    let targets: [(&str, SocketAddr, &dyn Fn() -> u64); 2] = [
        (OURS, p.plain_to_tls, &ours_rss),
        (THEIRS, ep.addr, &theirs_rss),
    ];
    for (who, addr, rss) in targets {
        let m = ClientMeter::start();
        let (per, answered, p99, secs) = idle(addr, v.sessions, rss).await;
        rows.push(
            Row::new(
                NAME,
                &format!("{} idle sessions {who}", v.sessions),
                "KiB/session",
                None,
                per,
            )
            .note(with_client(
                format!(
                    "{answered}/{} NOOPs answered (p99 {p99:.1} ms); opened in {secs:.1} s",
                    v.sessions
                ),
                m.busy(),
            )),
        );
    }
    rows.push(Row::new(
        NAME,
        &format!("peak RSS (VmHWM) {THEIRS}"),
        "KiB",
        None,
        ep.hwm_kib() as f64,
    ));
    Ok(rows)
}
