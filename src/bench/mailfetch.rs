//! Scenario 1b: a realistic FETCH from Dovecot. `FETCH 1:* (FLAGS BODY.PEEK[])` of a
//! seeded Maildir INBOX (mixed sizes, 1 KB to 1 MB), direct (AUTHENTICATE XOAUTH2 to
//! Dovecot) and through the proxy (LOGIN) in alternating rounds, plain↔plain and
//! TLS↔TLS. Dovecot runs as separate processes, so the proxy competes with it (and
//! with the client) for the two cores.

use std::time::Instant;

use super::client::Client;
use super::env::{Env, PASSWORD, Proxy, USER};
use super::proc::{ClientMeter, median, within};
use super::report::{Row, with_client};

/// One round; (MB/s, messages/s).
async fn round(
    env: &Env,
    p: &Proxy,
    tls: bool,
    via_proxy: bool,
    token: &str,
) -> std::io::Result<(f64, f64)> {
    let d = env.dovecot.as_ref().expect("dovecot started");
    let (pp, pt) = p.dovecot.expect("proxy has Dovecot listeners");
    let addr = match (tls, via_proxy) {
        (false, false) => d.imap,
        (true, false) => d.imaps,
        (false, true) => pp,
        (true, true) => pt,
    };
    let mut c = Client::connect(addr, tls.then_some(&env.tls)).await?;
    if via_proxy {
        c.login(USER, PASSWORD).await?;
    } else {
        c.xoauth2(USER, token).await?;
    }
    c.command("EXAMINE INBOX").await?;
    let t = Instant::now();
    c.command("FETCH 1:* (FLAGS BODY.PEEK[])").await?;
    let secs = t.elapsed().as_secs_f64();
    let bytes = c.literal_bytes;
    c.logout().await?;
    if bytes != d.bytes {
        return Err(std::io::Error::other(format!(
            "FETCH returned {bytes} literal bytes, the mailbox holds {}",
            d.bytes
        )));
    }
    Ok((bytes as f64 / 1e6 / secs, d.messages as f64 / secs))
}

pub async fn run(env: &Env, p: &Proxy, token: &str, rounds: usize) -> std::io::Result<Vec<Row>> {
    let d = env.dovecot.as_ref().expect("dovecot started");
    // Warm-up: Dovecot builds its index and the page cache fills.
    round(env, p, false, false, token).await?;
    let mut rows = Vec::new();
    for tls in [false, true] {
        let (mut direct, mut proxy, mut dm, mut pm) = (Vec::new(), Vec::new(), vec![], vec![]);
        let (mut proxy_cpu, mut busy) = (0.0, 0.0f64);
        for _ in 0..rounds {
            let m = ClientMeter::start();
            let (mb, msgs) = within("direct round", round(env, p, tls, false, token)).await?;
            busy = busy.max(m.busy());
            direct.push(mb);
            dm.push(msgs);
            let (c0, m) = (p.cpu(), ClientMeter::start());
            let (mb, msgs) = within("proxy round", round(env, p, tls, true, token)).await?;
            busy = busy.max(m.busy());
            proxy_cpu += p.cpu() - c0;
            proxy.push(mb);
            pm.push(msgs);
        }
        let label = if tls { "TLS<->TLS" } else { "plain<->plain" };
        let gb = d.bytes as f64 * rounds as f64 / 1e9;
        let note = format!(
            "{} msgs, {:.0} MB; proxy {:.2} CPU s/GB",
            d.messages,
            d.bytes as f64 / 1e6,
            proxy_cpu / gb
        );
        let name = "1b Dovecot FETCH";
        rows.push(
            Row::new(
                name,
                &format!("{label} throughput"),
                "MB/s",
                Some(median(&direct)),
                median(&proxy),
            )
            .note(with_client(note, busy)),
        );
        rows.push(Row::new(
            name,
            &format!("{label} messages"),
            "msg/s",
            Some(median(&dm)),
            median(&pm),
        ));
    }
    Ok(rows)
}
