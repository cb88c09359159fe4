//! Scenarios 1 and 2: bulk download (FETCH of a large message served from memory)
//! and bulk upload (APPEND of large LITERAL+ messages), direct and through the proxy
//! in alternating rounds, plain↔plain and TLS↔TLS.

use std::time::Instant;

use super::client::Client;
use super::env::{Env, PASSWORD, Proxy, USER};
use super::proc::{ClientMeter, median, within};
use super::report::{Row, with_client};

pub struct Bulk {
    pub total: u64,
    pub message: u64,
    pub rounds: usize,
}

/// One round: log in, then download (or upload) `total` bytes; MB/s.
async fn round(
    env: &Env,
    p: &Proxy,
    tls: bool,
    via_proxy: bool,
    upload: bool,
    b: &Bulk,
    token: &str,
) -> std::io::Result<f64> {
    let addr = match (tls, via_proxy) {
        (false, false) => env.imap.addr(),
        (true, false) => env.imaps.addr(),
        (false, true) => p.plain,
        (true, true) => p.tls,
    };
    let mut c = Client::connect(addr, tls.then_some(&env.tls)).await?;
    if via_proxy {
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
    Ok(moved as f64 / 1e6 / secs)
}

pub async fn run(
    env: &Env,
    p: &Proxy,
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
        let (mut direct, mut proxy) = (Vec::new(), Vec::new());
        let (mut proxy_cpu, mut proxy_bytes, mut client_busy) = (0.0, 0.0, 0.0f64);
        for _ in 0..b.rounds {
            // The client is measured in both directions: either figure may be its limit.
            let m = ClientMeter::start();
            let what = if tls {
                "direct TLS round"
            } else {
                "direct plain round"
            };
            direct.push(within(what, round(env, p, tls, false, upload, b, token)).await?);
            client_busy = client_busy.max(m.busy());
            let (c0, m) = (p.cpu(), ClientMeter::start());
            let what = if tls {
                "proxy TLS round"
            } else {
                "proxy plain round"
            };
            proxy.push(within(what, round(env, p, tls, true, upload, b, token)).await?);
            proxy_cpu += p.cpu() - c0;
            proxy_bytes += b.total as f64;
            client_busy = client_busy.max(m.busy());
        }
        let (d, x) = (median(&direct), median(&proxy));
        let ratio = x / d;
        let (label, need) = if tls {
            ("TLS<->TLS", 0.80)
        } else {
            ("plain<->plain", 0.95)
        };
        let note = with_client(
            format!("proxy {:.2} CPU s/GB", proxy_cpu / (proxy_bytes / 1e9)),
            client_busy,
        );
        rows.push(
            Row::new(name, &format!("{label} throughput"), "MB/s", Some(d), x)
                .target(&format!("ratio >= {need}"), ratio >= need)
                .note(note),
        );
    }
    Ok(rows)
}
