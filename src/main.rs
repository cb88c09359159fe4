//! Binary edge: parse the command line, set up logging and the TLS provider, call
//! the library, and turn errors into a message and an exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use oauth_mail_proxy::cli::{Cli, Command, LogFormat};
use oauth_mail_proxy::config::Config;

mod ops_cli;

/// mimalloc instead of glibc malloc: with glibc, each idle logged-in session left
/// ~100 KiB of dirty arena pages (dynamic mmap threshold + fragmentation; README,
/// Benchmarks), with mimalloc the RSS follows the live heap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One rustls provider for the whole process (see STYLE.md: never two).
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    init_tracing(cli.log.as_deref(), cli.log_format, cli.trace_protocol);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logging on stderr: `--log` (else `RUST_LOG`, else `info`) as the filter, text or
/// JSON lines. The `protocol` target (`--trace-protocol`, see `trace`) is off unless
/// asked for, whatever the filter says.
fn init_tracing(filter: Option<&str>, format: LogFormat, trace_protocol: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let protocol = if trace_protocol {
        "protocol=info"
    } else {
        "protocol=off"
    };
    let filter = filter.add_directive(protocol.parse().expect("a valid directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

fn load_config(cli: &Cli) -> Result<Config> {
    let path = Config::locate(cli.config.as_deref());
    Ok(Config::load(&path)?)
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::HashPassword => hash_password(),
        Command::Healthcheck { url } => healthcheck(url).await,
        Command::AppPassword { action } => app_password(&load_config(&cli)?, action),
        Command::CheckConfig => {
            let c = load_config(&cli)?;
            println!(
                "{}: ok ({} listener(s), {} account(s))",
                c.file.display(),
                c.listeners.len(),
                c.accounts.len()
            );
            Ok(())
        }
        Command::Demo { bind, once } => {
            let shutdown = CancellationToken::new();
            let s = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                s.cancel();
            });
            let opts = oauth_mail_proxy::demo::DemoOptions {
                bind: *bind,
                once: *once,
            };
            Ok(oauth_mail_proxy::demo::run(opts, shutdown).await?)
        }
        Command::Serve => {
            // Registered first: a SIGHUP during startup must not kill the process.
            let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
            let config = load_config(&cli)?;
            let server = oauth_mail_proxy::listener::Server::bind(config).await?;
            let shutdown = CancellationToken::new();
            let s = shutdown.clone();
            let force = server.force_close_token();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutting down: no new connections; draining spliced sessions");
                s.cancel();
                wait_for_signal().await;
                tracing::info!("second signal: closing the remaining sessions now");
                force.cancel();
            });
            let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
            match hup {
                Ok(mut hup) => {
                    tokio::spawn(async move {
                        while hup.recv().await.is_some() {
                            if reload_tx.send(()).is_err() {
                                return;
                            }
                        }
                    });
                }
                Err(e) => tracing::warn!("cannot listen for SIGHUP ({e}): reload unavailable"),
            }
            server.run_with_reloads(shutdown, reloads).await;
            Ok(())
        }
        Command::Login {
            account,
            no_browser,
            manual,
            timeout,
            port,
        } => {
            let config = load_config(&cli)?;
            let Some(acc) = config.resolve_account(account) else {
                bail!(
                    "no [[account]] with username \"{account}\" in {} (nor a template account whose password file lists it)",
                    config.file.display()
                );
            };
            let acc = &acc;
            let mut store = oauth_mail_proxy::oauth::TokenStore::open(&config.proxy.state_dir)?;
            if acc.encrypt_with == oauth_mail_proxy::config::EncryptWith::ClientPassword {
                // The tokens are sealed with the client's local password: check it
                // against the account's hash before deriving a key from it.
                let password = oauth_mail_proxy::ops::passphrase::local_password(account)?;
                let (hash, pw) = (acc.password_hash.clone(), password.clone());
                let ok = tokio::task::spawn_blocking(move || {
                    oauth_mail_proxy::accounts::verify(&hash, &pw)
                })
                .await?;
                if !ok {
                    bail!("wrong local password for {account}");
                }
                store = store.with_password(&acc.username, password);
            }
            let http = oauth_mail_proxy::oauth::client::http_client()?;
            let redirect_tls = if *manual {
                None
            } else {
                oauth_mail_proxy::oauth::flows::redirect_tls(&config, acc)?
            };
            let opts = oauth_mail_proxy::oauth::LoginOptions {
                open_browser: !no_browser && !manual,
                timeout: *timeout,
                redirect_port: *port,
                redirect_tls,
                ..Default::default()
            };
            let input = manual.then(oauth_mail_proxy::oauth::login::stdin_reader);
            oauth_mail_proxy::oauth::login_account(acc, &store, &http, opts, input)
                .await
                .with_context(|| format!("login for {account} failed"))?;
            eprintln!("Tokens for {account} stored.");
            Ok(())
        }
        Command::Status { .. }
        | Command::Verify { .. }
        | Command::Logout { .. }
        | Command::Export { .. }
        | Command::Import { .. }
        | Command::ImportToken { .. } => {
            let config = load_config(&cli)?;
            ops_cli::run(&cli.command, &config).await
        }
    }
}

/// `app-password add|list|revoke`.
fn app_password(config: &Config, action: &oauth_mail_proxy::cli::AppPasswordAction) -> Result<()> {
    use oauth_mail_proxy::app_passwords;
    use oauth_mail_proxy::cli::AppPasswordAction as A;
    let (A::Add { account, .. } | A::List { account } | A::Revoke { account, .. }) = action;
    if config.resolve_account(account).is_none() {
        bail!(
            "no account \"{account}\" in {} (nor a template account listing it)",
            config.file.display()
        );
    }
    let state = &config.proxy.state_dir;
    match action {
        A::Add { account, name } => {
            let pw = app_passwords::add(state, account, name)?;
            eprintln!("App password \"{name}\" for {account} (shown only now):");
            println!("{}", secrecy::ExposeSecret::expose_secret(&pw));
        }
        A::List { account } => {
            for p in app_passwords::list(state, account)? {
                let created = std::time::UNIX_EPOCH + std::time::Duration::from_secs(p.created);
                println!(
                    "{}\tcreated {}",
                    p.name,
                    humantime::format_rfc3339_seconds(created)
                );
            }
        }
        A::Revoke { account, name } => {
            app_passwords::revoke(state, account, name)?;
            eprintln!("App password \"{name}\" of {account} revoked.");
        }
    }
    Ok(())
}

/// `healthcheck URL`: a GET with short timeouts; an error unless the answer is 2xx.
async fn healthcheck(url: &str) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let status = http.get(url).send().await?.status();
    if !status.is_success() {
        bail!("{url}: {status}");
    }
    println!("{url}: {status}");
    Ok(())
}

/// Reads one password line from stdin (prompting on stderr when stdin is a terminal)
/// and prints its Argon2id PHC hash.
fn hash_password() -> Result<()> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (echoed): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    let pw = line.trim_end_matches(['\r', '\n']);
    if pw.is_empty() {
        bail!("empty password");
    }
    let secret = SecretString::from(pw.to_string());
    zeroize::Zeroize::zeroize(&mut line);
    println!("{}", oauth_mail_proxy::accounts::hash_password(&secret));
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
