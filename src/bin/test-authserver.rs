//! Runs the test OAuth 2.0 authorization server of `oauth_mail_proxy::authserver`
//! on its own, for the demo and for manual testing.
//!
//! Prints `listening on http://ADDR`, then the endpoints and client credentials as
//! `key=value` lines, on stdout; runs until Ctrl-C (or SIGTERM).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use oauth_mail_proxy::authserver::{AuthServer, AuthServerConfig};

/// Small OAuth 2.0 authorization server for tests and the demo (auto-approves every
/// authorization request; PKCE S256 required).
#[derive(Debug, Parser)]
#[command(name = "test-authserver", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    bind: SocketAddr,
    /// Access token lifetime, e.g. "3600s", "2s", "15m".
    #[arg(long, default_value = "3600s", value_parser = humantime::parse_duration)]
    token_lifetime: Duration,
    /// OAuth client id accepted at /authorize and /token.
    #[arg(long)]
    client_id: Option<String>,
    /// Its secret (random when omitted; an empty string makes a public client).
    #[arg(long)]
    client_secret: Option<String>,
    /// User approved when the request has no login_hint.
    #[arg(long)]
    user: Option<String>,
    /// Keep refresh tokens valid across refreshes instead of rotating them.
    #[arg(long)]
    no_rotate: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();

    let defaults = AuthServerConfig::generated();
    let cfg = AuthServerConfig {
        client_id: args.client_id.unwrap_or(defaults.client_id),
        client_secret: args.client_secret.unwrap_or(defaults.client_secret),
        token_lifetime: args.token_lifetime,
        default_user: args.user.unwrap_or(defaults.default_user),
        rotate_refresh_tokens: !args.no_rotate,
        ..defaults
    };
    let server = AuthServer::start(args.bind, cfg)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let c = server.config();
    println!("listening on http://{}", server.addr());
    println!("authorize_url={}", server.authorize_url());
    println!("token_url={}", server.token_url());
    println!("introspect_url={}", server.introspect_url());
    println!("client_id={}", c.client_id);
    println!("client_secret={}", c.client_secret);
    println!("introspect_client_id={}", c.introspect_client_id);
    println!("introspect_client_secret={}", c.introspect_client_secret);
    println!("default_user={}", c.default_user);
    use std::io::Write;
    std::io::stdout().flush()?;

    wait_for_signal().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}
