//! Scenarios 1 and 2: bulk download (FETCH of a large message served from memory)
//! and bulk upload (APPEND of large LITERAL+ messages), direct and through the proxy
//! in alternating rounds, plain↔plain and TLS↔TLS.

use std::net::SocketAddr;
use std::time::Instant;

use super::client::Client;
use super::env::{Env, PASSWORD, Proxy, USER};
use super::proc::{ClientMeter, CoreMeter, median, within};
use super::relay::Relay;
use super::report::{Row, with_client};

pub struct Bulk {
    pub total: u64,
    pub message: u64,
    pub rounds: usize,
}

/// Where a round's client connects.
#[derive(Clone, Copy)]
enum Route {
    Direct,
    Proxy,
    /// HAProxy, the reference relay (the client logs in with XOAUTH2 through it).
    Relay,
}

/// Where a round of `route` connects, and whether it logs in with LOGIN (the proxy)
/// rather than XOAUTH2.
fn target(
    env: &Env,
    p: &Proxy,
    relay: Option<&Relay>,
    tls: bool,
    route: Route,
) -> std::io::Result<(SocketAddr, bool)> {
    Ok(match (route, relay) {
        (Route::Direct, _) if tls => (env.imaps.addr(), false),
        (Route::Direct, _) => (env.imap.addr(), false),
        (Route::Proxy, _) if tls => (p.tls, true),
        (Route::Proxy, _) => (p.plain, true),
        (Route::Relay, Some(r)) if tls => (r.tls, false),
        (Route::Relay, Some(r)) => (r.plain, false),
        (Route::Relay, None) => return Err(std::io::Error::other("no relay")),
    })
}

/// One round to `addr` (`login`: LOGIN, else XOAUTH2 with `token`), downloading (or
/// uploading) `b.total` bytes; (MB/s, bytes moved).
pub(super) async fn round(
    env: &Env,
    (addr, login): (SocketAddr, bool),
    tls: bool,
    upload: bool,
    b: &Bulk,
    token: &str,
) -> std::io::Result<(f64, u64)> {
    let mut c = Client::connect(addr, tls.then_some(&env.tls)).await?;
    if login {
        c.login(USER, PASSWORD).await?;
    } else {
        c.xoauth2(USER, token).await?;
    }
    c.command("SELECT INBOX").await?;
    let chunk = vec![b'x'; 256 * 1024];
    let t = Instant::now();
    let mut moved = 0;
    while moved < b.total {
        if upload {
            c.append(b.message, &chunk).await?;
            moved += b.message;
        } else {
            c.command("FETCH 1 BODY.PEEK[]").await?;
            moved += c.literal_bytes;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    c.logout().await?;
    Ok((moved as f64 / 1e6 / secs, moved))
}

/// The measured figures of one route over all rounds.
#[derive(Default)]
struct Tally {
    mbps: Vec<f64>,
    /// CPU seconds of the route's own process (proxy or relay).
    cpu: f64,
    bytes: f64,
    /// Busy cores of the whole machine, highest round.
    cores: f64,
}

impl Tally {
    fn cpu_per_gb(&self) -> f64 {
        self.cpu / (self.bytes / 1e9)
    }
}

pub async fn run(
    env: &Env,
    p: &Proxy,
    relay: Option<&Relay>,
    b: &Bulk,
    token: &str,
    upload: bool,
) -> std::io::Result<Vec<Row>> {
    let name = if upload {
        "2 bulk upload"
    } else {
        "1 bulk download"
    };
    let mut rows = Vec::new();
    for tls in [false, true] {
        let label = if tls { "TLS<->TLS" } else { "plain<->plain" };
        let (mut direct, mut proxy, mut haproxy) = <(Tally, Tally, Tally)>::default();
        let mut client_busy = 0.0f64;
        for _ in 0..b.rounds {
            let mut routes = vec![(Route::Direct, &mut direct), (Route::Proxy, &mut proxy)];
            if relay.is_some() {
                routes.push((Route::Relay, &mut haproxy));
            }
            for (route, tally) in routes {
                let own_cpu = || match route {
                    Route::Direct => 0.0,
                    Route::Proxy => p.cpu(),
                    Route::Relay => relay.map_or(0.0, Relay::cpu),
                };
                // The client is measured on every route: any figure may be its limit.
                let (c0, m, cores) = (own_cpu(), ClientMeter::start(), CoreMeter::start());
                let what = format!("{label} round ({})", route_name(route));
                let to = target(env, p, relay, tls, route)?;
                let (mbps, _) = within(&what, round(env, to, tls, upload, b, token)).await?;
                tally.mbps.push(mbps);
                tally.cpu += own_cpu() - c0;
                tally.bytes += b.total as f64;
                tally.cores = tally.cores.max(cores.cores());
                client_busy = client_busy.max(m.busy());
            }
        }
        let (d, x) = (median(&direct.mbps), median(&proxy.mbps));
        let need = if tls { 0.80 } else { 0.95 };
        let note = with_client(
            format!(
                "proxy {:.2} CPU s/GB; busy cores: direct {:.2}, proxy {:.2}",
                proxy.cpu_per_gb(),
                direct.cores,
                proxy.cores
            ),
            client_busy,
        );
        rows.push(
            Row::new(name, &format!("{label} throughput"), "MB/s", Some(d), x)
                .target(&format!("ratio >= {need}"), x / d >= need)
                .note(note),
        );
        if relay.is_some() {
            let r = median(&haproxy.mbps);
            rows.push(
                Row::new(name, &format!("{label} HAProxy relay"), "MB/s", Some(d), r).note(
                    format!(
                        "reference relay: {:.2} CPU s/GB, busy cores {:.2}; proxy/HAProxy {:.3}",
                        haproxy.cpu_per_gb(),
                        haproxy.cores,
                        x / r
                    ),
                ),
            );
        }
    }
    Ok(rows)
}

fn route_name(r: Route) -> &'static str {
    match r {
        Route::Direct => "direct",
        Route::Proxy => "proxy",
        Route::Relay => "HAProxy",
    }
}
