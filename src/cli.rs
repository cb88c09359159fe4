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

    /// Log line format on stderr: `text` (human-readable) or `json` (one JSON object
    /// per line: `timestamp`, `level`, `target`, `fields.message`, ...).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log the pre-auth exchange with clients and the upstream logins line by line
    /// (target `protocol`, level info), every password, token and SASL payload redacted.
    #[arg(long, global = true)]
    pub trace_protocol: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy: accept legacy logins on every `[[listener]]`.
    Serve,
    /// Authorise an account with its OAuth provider and store its tokens, with the
    /// account's `flow`: browser and loopback redirect (authorization_code), a code to
    /// enter on another device (device_code), or no interaction (client_credentials).
    Login {
        /// The account's `username` in the config.
        account: String,
        /// Do not open a browser; print the authorization URL alone on one line of stdout.
        #[arg(long)]
        no_browser: bool,
        /// For a browser on another machine: print the URL, then read the address the
        /// browser was redirected to from stdin (authorization_code only).
        #[arg(long)]
        manual: bool,
        /// Give up when the redirect (or the device approval) has not arrived within this time.
        #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Port of the loopback redirect listener (0 = any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Show each account's token state (no secrets).
    Status {
        /// Only this account.
        account: Option<String>,
        /// Print a JSON array (for scripts) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Log in upstream with each account's token on every listener and report (exit
    /// code 0 only if every checked account passed).
    Verify {
        /// Only this account.
        account: Option<String>,
        /// On SMTP listeners, also send a short test message to this address.
        #[arg(long, value_name = "ADDRESS")]
        send_test: Option<String>,
    },
    /// Revoke an account's tokens at the provider (when it has `revocation_url`) and
    /// delete them.
    Logout { account: String },
    /// Write every account's settings and tokens to FILE, encrypted with a passphrase
    /// ($OAUTH_MAIL_PROXY_PASSPHRASE, else asked on the terminal).
    Export { file: PathBuf },
    /// Restore the token records of an export (replacing only the same accounts') and
    /// show the exported `[[account]]` blocks missing from the config.
    Import { file: PathBuf },
    /// Store a refresh token read from stdin (one line) for ACCOUNT; the next use
    /// refreshes it.
    ImportToken { account: String },
    /// Read a password on stdin and print its Argon2id hash for `password_hash`.
    HashPassword,
    /// Named app passwords of an account (stored hashed in `state_dir`).
    AppPassword {
        #[command(subcommand)]
        action: AppPasswordAction,
    },
    /// Check the config file and exit.
    CheckConfig,
    /// GET URL (the admin listener's `/healthz`) and exit 0 on a 2xx answer, 1
    /// otherwise: a container HEALTHCHECK without curl in the image.
    Healthcheck {
        #[arg(default_value = "http://127.0.0.1:8025/healthz")]
        url: String,
    },
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

#[derive(Debug, Subcommand)]
pub enum AppPasswordAction {
    /// Generate an app password, print it once, store only its hash.
    Add {
        /// The account (its `username`, or a user of a template account).
        account: String,
        /// A name for the client or device it is for (letters, digits, `.`, `_`, `-`).
        name: String,
    },
    /// List an account's app passwords (names and creation dates).
    List { account: String },
    /// Revoke an app password; the proxy refuses it from the next login on.
    Revoke { account: String, name: String },
}
