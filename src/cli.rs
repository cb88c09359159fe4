//! The command line (clap derive). `main.rs` turns these into calls of the library.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "oauth-mail-proxy",
    version,
    about = "IMAP/POP3/SMTP proxy: password logins in, OAuth 2.0 (XOAUTH2/OAUTHBEARER) out"
)]
pub struct Cli {
    /// Config file [default: $OAUTH_MAIL_PROXY_CONFIG, then ./oauth-mail-proxy.toml]
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter, e.g. "info" or "oauth_mail_proxy=debug" [default: $RUST_LOG or info]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy: accept legacy logins on every [[listener]].
    Serve,
    /// Authorise an account with its OAuth provider and store its tokens.
    Login {
        /// The account's `username` in the config.
        account: String,
        /// Do not open a browser; print the authorization URL alone on one line of stdout.
        #[arg(long)]
        no_browser: bool,
        /// Give up when the redirect has not arrived within this time.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Port of the loopback redirect listener (0 = any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Show each account's token state (no secrets).
    Status,
    /// Read a password on stdin and print its Argon2id hash for `password_hash`.
    HashPassword,
    /// Check the config file and exit.
    CheckConfig,
    /// Self-contained demo: test OAuth server, an XOAUTH2-only IMAP server and the
    /// proxy on loopback; logs in through the proxy with a plain LOGIN.
    Demo {
        /// Where the demo proxy listens.
        #[arg(long, default_value = "127.0.0.1:1143")]
        bind: std::net::SocketAddr,
        /// Exit after the scripted login instead of serving until Ctrl-C.
        #[arg(long)]
        once: bool,
    },
}
