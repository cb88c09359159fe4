//! `cargo run --release --bin bench -- [--quick] [--scenario NAME] [--json FILE]
//! [--soak MINUTES] [--pin] [--compare-emailproxy]`
//!
//! Measures the proxy against a direct connection in the same run (issue 6): every
//! scenario alternates direct and through-proxy rounds and reports medians, the ratio
//! proxy/direct, the proxy's CPU and peak RSS (the proxy runs as a child process,
//! `oauth-mail-proxy serve`, so /proc/PID figures are its own). The load client and
//! the upstreams run in this process on separate runtimes ("bench-client" and
//! "bench-up" threads). Targets are reported, never asserted. When `haproxy` is
//! installed, the bulk scenarios also run through it as a protocol-blind reference
//! relay, in the same alternation (src/bench/relay.rs).

#[path = "../bench/mod.rs"]
mod bench;

use std::path::Path;
use std::time::Duration;

use bench::report::{Row, or_failed};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Benchmark: the proxy versus a direct connection, on loopback")]
struct Args {
    /// Smaller volumes (200 MB bulk, 500 Dovecot messages, 1,000 sessions, shorter
    /// token lifetime).
    #[arg(long)]
    quick: bool,
    /// Run one scenario: download, fetch (Dovecot), upload, smtp, logins, sessions,
    /// refresh.
    #[arg(long)]
    scenario: Option<String>,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// Idle sessions for the sessions scenario [default: 10,000, --quick 1,000;
    /// capped by the open-file limit].
    #[arg(long)]
    sessions: Option<usize>,
    /// Accounts for the refresh scenario.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Messages seeded into Dovecot for the fetch scenario [default: 2,000, --quick 500].
    #[arg(long)]
    messages: Option<usize>,
    /// Instead of the scenarios: mixed load against one proxy for MINUTES, sampling
    /// its RSS every 10 s (not part of CI).
    #[arg(long, value_name = "MINUTES")]
    soak: Option<f64>,
    /// Pin the load client and upstreams (this process) to CPU 0 and the proxy and the
    /// reference relay to CPU 1, so the process under test has a core of its own.
    #[arg(long)]
    pin: bool,
    /// Also run download, logins and sessions against email-oauth2-proxy
    /// (`pip install emailproxy`), side by side.
    #[arg(long)]
    compare_emailproxy: bool,
}

const MB: u64 = 1_000_000;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.pin {
        anyhow::ensure!(
            std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
            "--pin needs two CPUs"
        );
        bench::proc::pin_self()?;
    }
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let want = |s: &str| args.scenario.as_deref().is_none_or(|x| x == s);
    let rounds = if args.quick { 3 } else { 5 };
    let bulk = bench::bulk::Bulk {
        total: if args.quick { 200 * MB } else { 1000 * MB },
        message: 100 * MB,
        rounds,
    };
    let nofile = bench::proc::nofile_limit();
    let fit = (nofile.saturating_sub(200) / 2) as usize;
    let sessions = args
        .sessions
        .unwrap_or(if args.quick { 1000 } else { 10_000 })
        .min(fit);
    let mut env = bench::env::Env::start(bulk.message as usize);
    let seed = args.messages.unwrap_or(if args.quick { 500 } else { 2000 });
    let mut dovecot_error = None;
    if want("fetch") || args.soak.is_some() {
        eprintln!("starting Dovecot, seeding {seed} messages ...");
        if let Err(e) = env.start_dovecot(seed) {
            eprintln!("Dovecot scenario skipped: {e}");
            dovecot_error = Some(e);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()?;
    let store = oauth_mail_proxy::oauth::TokenStore::open(&env.state_dir())?;
    let now = oauth_mail_proxy::oauth::outcome::unix_now();
    let token = env.store_tokens(&store, bench::env::USER, now + 3600);
    let hash = oauth_mail_proxy::accounts::hash_password(&bench::env::PASSWORD.to_string().into());
    let mut rows: Vec<Row> = Vec::new();
    let mut meta = serde_json::json!({
        "quick": args.quick,
        "pinned": args.pin,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "rounds": rounds,
        "bulk_bytes_per_round": bulk.total,
        "sessions": sessions,
        "nofile_limit": nofile,
        "cpu_source": "proxy: /proc/<child pid>/stat utime+stime; client: /proc/self/task (bench-client threads)",
    });
    if let Some(minutes) = args.soak {
        eprintln!("soak: {minutes} minutes of mixed load ...");
        let p = env.proxy(&[(bench::env::USER.into(), hash.clone())], "1m");
        let soak = rt.block_on(bench::soak::run(&env, &p, minutes))?;
        rows.extend(soak.rows);
        meta["soak_minutes"] = minutes.into();
        meta["soak_rss_samples_kib"] = soak.samples;
        meta["proxy_peak_rss_kib"] = p.hwm_kib().into();
        return finish(&rows, meta, args.json.as_deref());
    }
    let main_sets = ["download", "fetch", "upload", "smtp", "logins"];
    if main_sets.iter().any(|s| want(s)) {
        let p = env.proxy(&[(bench::env::USER.into(), hash.clone())], "1m");
        let relay = if want("download") || want("upload") {
            relay_or_row(&env, &mut rows)
        } else {
            None
        };
        let cpu0 = p.cpu();
        rt.block_on(async {
            if want("download") {
                eprintln!("bulk download ...");
                rows.extend(or_failed(
                    "1 bulk download",
                    bench::bulk::run(&env, &p, relay.as_ref(), &bulk, &token, false).await,
                ));
            }
            if want("fetch") {
                match (&env.dovecot, &dovecot_error) {
                    (Some(d), _) => {
                        eprintln!("Dovecot FETCH of {} messages ...", d.messages);
                        rows.extend(or_failed(
                            "1b Dovecot FETCH",
                            bench::mailfetch::run(&env, &p, &token, rounds).await,
                        ));
                    }
                    (None, e) => rows.push(
                        Row::new("1b Dovecot FETCH", "skipped", "-", None, 0.0)
                            .note(e.clone().unwrap_or_default()),
                    ),
                }
            }
            if want("upload") {
                eprintln!("bulk upload ...");
                rows.extend(or_failed(
                    "2 bulk upload",
                    bench::bulk::run(&env, &p, relay.as_ref(), &bulk, &token, true).await,
                ));
            }
            if want("smtp") {
                eprintln!("SMTP DATA upload ...");
                rows.extend(or_failed(
                    "2b SMTP DATA upload",
                    bench::smtp::run(&env, &p, bulk.total, rounds, &token).await,
                ));
            }
            if want("logins") {
                eprintln!("logins ...");
                let n = if args.quick { 200 } else { 1000 };
                rows.extend(or_failed(
                    "3 logins",
                    bench::logins::run(&env, &p, &token, n, rounds).await,
                ));
            }
            Ok::<_, std::io::Error>(())
        })?;
        meta["proxy_cpu_seconds"] = (p.cpu() - cpu0).into();
        meta["proxy_peak_rss_kib"] = p.hwm_kib().into();
        rows.push(Row::new(
            "proxy process",
            "peak RSS (VmHWM)",
            "KiB",
            None,
            p.hwm_kib() as f64,
        ));
    }
    if want("sessions") {
        for tls in [false, true] {
            eprintln!("{sessions} idle sessions (tls: {tls}) ...");
            let p = env.proxy(&[(bench::env::USER.into(), hash.clone())], "1m");
            rows.extend(or_failed(
                "4 idle sessions",
                rt.block_on(bench::sessions::run(&env, &p, sessions, tls)),
            ));
        }
    }
    if want("refresh") {
        let lifetime = if args.quick { 20 } else { 45 };
        eprintln!(
            "token refresh: {} accounts, tokens expire in {lifetime}-{}s ...",
            args.accounts,
            lifetime + 9
        );
        let thresholds = bench::refresh::seed(&env, args.accounts, lifetime);
        let h = bench::refresh::cheap_hash();
        let accounts: Vec<(String, String)> = (0..args.accounts)
            .map(|i| (bench::refresh::user(i), h.clone()))
            .collect();
        let p = env.proxy(&accounts, &bench::refresh::margin());
        let run_for = Duration::from_secs(lifetime + 20);
        rows.extend(or_failed(
            "5 token refresh",
            rt.block_on(bench::refresh::run(&env, p.plain, thresholds, run_for)),
        ));
        rows.push(Row::new(
            "proxy process (refresh)",
            "peak RSS (VmHWM)",
            "KiB",
            None,
            p.hwm_kib() as f64,
        ));
    }
    if args.compare_emailproxy {
        rows.extend(compare(&env, &rt, &args, &hash, &token, rounds));
    }
    finish(&rows, meta, args.json.as_deref())
}

/// HAProxy, the reference relay for the bulk scenarios, or a row saying why not.
fn relay_or_row(env: &bench::env::Env, rows: &mut Vec<Row>) -> Option<bench::relay::Relay> {
    let why = match bench::relay::missing() {
        Some(why) => why,
        None => match bench::relay::Relay::start(env) {
            Ok(r) => return Some(r),
            Err(e) => e,
        },
    };
    rows.push(Row::new("HAProxy relay", "skipped", "-", None, 0.0).note(why));
    None
}

/// The side-by-side runs against email-oauth2-proxy; a row saying why when it cannot.
fn compare(
    env: &bench::env::Env,
    rt: &tokio::runtime::Runtime,
    args: &Args,
    hash: &str,
    token: &str,
    rounds: usize,
) -> Vec<Row> {
    let skipped =
        |why: String| vec![Row::new("C vs emailproxy", "skipped", "-", None, 0.0).note(why)];
    if !bench::emailproxy::available() {
        return skipped("`python3 -c 'import emailproxy'` failed: pip install emailproxy".into());
    }
    eprintln!("comparison with email-oauth2-proxy ...");
    let ep = match bench::emailproxy::EmailProxy::start(env) {
        Ok(ep) => ep,
        Err(e) => return skipped(e),
    };
    let p = env.proxy(&[(bench::env::USER.into(), hash.into())], "1m");
    // Every emailproxy login derives its token key with 1.3 M PBKDF2 iterations
    // (about 0.35 s of CPU here), so its login and session counts stay small.
    let v = bench::compare::Volumes {
        download: if args.quick { 100 * MB } else { 500 * MB },
        rounds,
        sequential: if args.quick { 10 } else { 20 },
        parallel: if args.quick { 32 } else { 64 }, // logins, 4 at a time
        sessions: if args.quick { 50 } else { 200 },
    };
    match rt.block_on(bench::compare::run(env, &p, &ep, &v, token)) {
        Ok(rows) => rows,
        Err(e) => skipped(format!("failed: {e}")),
    }
}

/// Prints the table and writes the JSON.
fn finish(rows: &[Row], meta: serde_json::Value, json: Option<&Path>) -> anyhow::Result<()> {
    bench::report::print(rows);
    println!(
        "\nCPU: proxy figures are the child process's own; the client and upstreams share the bench process."
    );
    if let Some(path) = json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&bench::report::json(rows, meta))?,
        )?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}
