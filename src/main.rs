//! Binary edge: parse the command line, set up logging and the TLS provider, call
//! the library, and turn errors into a message and an exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use oauth_mail_proxy::cli::{Cli, Command};
use oauth_mail_proxy::config::Config;

fn main() -> ExitCode {
    // One rustls provider for the whole process (see STYLE.md: never two).
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    init_tracing(cli.log.as_deref());
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

fn init_tracing(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::new(f),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn load_config(cli: &Cli) -> Result<Config> {
    let path = Config::locate(cli.config.as_deref());
    Ok(Config::load(&path)?)
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::HashPassword => hash_password(),
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
            let config = load_config(&cli)?;
            let server = oauth_mail_proxy::listener::Server::bind(config).await?;
            let shutdown = CancellationToken::new();
            let s = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutting down");
                s.cancel();
            });
            server.run(shutdown).await;
            Ok(())
        }
        Command::Login {
            account,
            no_browser,
            timeout,
            port,
        } => {
            let config = load_config(&cli)?;
            let Some(acc) = config.account(account) else {
                bail!(
                    "no [[account]] with username \"{account}\" in {}",
                    config.file.display()
                );
            };
            let store = oauth_mail_proxy::oauth::TokenStore::open(&config.proxy.state_dir)?;
            let http = oauth_mail_proxy::oauth::client::http_client()?;
            let opts = oauth_mail_proxy::oauth::LoginOptions {
                open_browser: !no_browser,
                timeout: *timeout,
                redirect_port: *port,
                ..Default::default()
            };
            oauth_mail_proxy::oauth::login_authorization_code(acc, &store, &http, opts)
                .await
                .with_context(|| format!("login for {account} failed"))?;
            eprintln!("Tokens for {account} stored.");
            Ok(())
        }
        Command::Status => {
            let config = load_config(&cli)?;
            let store = oauth_mail_proxy::oauth::TokenStore::open(&config.proxy.state_dir)?;
            for a in &config.accounts {
                let rec = store.load(&a.username)?;
                let st =
                    oauth_mail_proxy::oauth::TokenStatus::from_record(&a.username, rec.as_ref());
                println!("{}", status_line(&st));
            }
            Ok(())
        }
    }
}

/// One line of `status`: account, state, expiry; never a secret.
fn status_line(st: &oauth_mail_proxy::oauth::TokenStatus) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let state = if !st.stored {
        "no token: run `oauth-mail-proxy login ACCOUNT`".to_string()
    } else if let Some(reason) = &st.needs_login {
        format!("needs login: {reason}")
    } else if st.valid {
        "ok".to_string()
    } else if st.has_refresh_token {
        "access token expired (refreshed on next use)".to_string()
    } else {
        "expired, no refresh token: run `oauth-mail-proxy login ACCOUNT`".to_string()
    };
    let expiry = match st.expires_at {
        Some(e) if e > now => format!(
            "expires in {}",
            humantime::format_duration(std::time::Duration::from_secs(e - now))
        ),
        Some(_) => "expired".to_string(),
        None => "expiry unknown".to_string(),
    };
    format!(
        "{}\t{}\t{}\trefresh token: {}",
        st.account,
        state,
        expiry,
        if st.has_refresh_token { "yes" } else { "no" }
    )
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
