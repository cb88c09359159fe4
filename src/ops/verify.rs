//! `verify`: a real upstream login per account on every listener, with the account's
//! token from the [`TokenManager`] (refreshed when needed), through the same
//! [`session::upstream::login`] a client session uses. IMAP also reports the INBOX
//! message count and the oldest message's Subject and Date; SMTP can send a test
//! message. A failure is classified ([`classify`]) into what to do.
//!
//! This file holds the reports, the per-account token check and the logins; what
//! happens after a login is in `verify/after_login.rs`.

mod after_login;

use std::time::Duration;

use super::OpsError;
use super::classify::{Diagnosis, Failure, classify};
use crate::config::{Account, Config, Listener, Protocol};
use crate::connector::Target;
use crate::oauth::TokenManager;
use crate::proto::Limits;
use crate::session::{self, LoginError, UpstreamFailure};
use after_login::{check_address, imap_sample, pop3_stat, smtp_send_test, wire};

/// EHLO name used upstream by `verify`.
const EHLO_DOMAIN: &str = "localhost";

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// SMTP listeners: send a short test message to this address.
    pub send_test: Option<String>,
}

/// One check that failed: the error and what it means.
#[derive(Debug, Clone)]
pub struct Failed {
    pub error: String,
    pub diagnosis: Diagnosis,
}

/// One listener's check.
#[derive(Debug, Clone)]
pub struct ListenerCheck {
    pub protocol: Protocol,
    /// The listener's local address.
    pub listener: String,
    pub result: Result<String, Failed>,
}

/// One account's checks.
#[derive(Debug, Clone)]
pub struct AccountReport {
    pub account: String,
    pub flow: String,
    pub token: Result<String, Failed>,
    pub listeners: Vec<ListenerCheck>,
}

impl AccountReport {
    pub fn passed(&self) -> bool {
        self.token.is_ok() && self.listeners.iter().all(|l| l.result.is_ok())
    }

    /// The report as printed by `verify`.
    pub fn render(&self) -> String {
        let mut s = format!("{} (flow {})\n", self.account, self.flow);
        let mut line = |label: &str, r: &Result<String, Failed>| match r {
            Ok(m) => s.push_str(&format!("  {label}: ok: {m}\n")),
            Err(f) => {
                s.push_str(&format!("  {label}: FAILED: {}\n", f.error));
                s.push_str(&f.diagnosis.render("    "));
            }
        };
        line("token", &self.token);
        for l in &self.listeners {
            line(&format!("{} {}", l.protocol.name(), l.listener), &l.result);
        }
        if self.token.is_ok() && self.listeners.is_empty() {
            s.push_str("  (no [[listener]] configured: only the token was checked)\n");
        }
        s.push_str(if self.passed() {
            "  result: PASS\n"
        } else {
            "  result: FAIL\n"
        });
        s
    }
}

/// Checks the accounts `filter` selects (all when `None`).
pub async fn verify(
    config: &Config,
    tokens: &TokenManager,
    filter: Option<&str>,
    opts: &VerifyOptions,
) -> Result<Vec<AccountReport>, OpsError> {
    if let Some(a) = &opts.send_test {
        check_address(a)?;
    }
    let accounts = super::accounts(config, filter)?;
    let mut targets = Vec::new();
    for l in &config.listeners {
        let t = crate::tls::client_config(l.upstream.ca.as_deref())
            .map(|client_config| Target {
                servers: l.upstream.servers.clone(),
                tls: l.upstream.tls,
                client_config,
                timeout: config.proxy.upstream_timeout,
            })
            .map_err(|e| e.to_string());
        targets.push((l, t));
    }
    let mut reports = Vec::new();
    for account in &accounts {
        reports.push(verify_account(account, tokens, &targets, opts).await);
    }
    Ok(reports)
}

fn failed(account: &str, error: String, f: Failure<'_>) -> Failed {
    Failed {
        diagnosis: classify(account, f),
        error,
    }
}

async fn verify_account(
    account: &Account,
    tokens: &TokenManager,
    targets: &[(&Listener, Result<Target, String>)],
    opts: &VerifyOptions,
) -> AccountReport {
    let name = account.username.as_str();
    let mut report = AccountReport {
        account: name.to_string(),
        flow: account.oauth.flow.name().to_string(),
        token: Ok(String::new()),
        listeners: Vec::new(),
    };
    if let Err(e) = tokens.access_token(account).await {
        let msg = e.to_string();
        report.token = Err(failed(name, msg.clone(), Failure::Token(&msg)));
        return report;
    }
    report.token = Ok(match tokens.status(name).ok().and_then(|s| s.expires_at) {
        Some(t) => format!(
            "access token valid until {}",
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t))
        ),
        None => "access token present (expiry unknown)".into(),
    });
    for (l, target) in targets {
        let result = match target {
            Err(e) => Err(failed(
                name,
                format!("upstream_ca: {e}"),
                Failure::Connect(e),
            )),
            Ok(t) => check_listener(account, tokens, l.protocol, t, opts).await,
        };
        report.listeners.push(ListenerCheck {
            protocol: l.protocol,
            listener: l.bind.to_string(),
            result,
        });
    }
    report
}

async fn check_listener(
    account: &Account,
    tokens: &TokenManager,
    protocol: Protocol,
    target: &Target,
    opts: &VerifyOptions,
) -> Result<String, Failed> {
    let limits = Limits::default();
    let name = account.username.as_str();
    let login = match protocol {
        Protocol::Imap => {
            session::upstream::login::<session::Imap>(tokens, target, limits, account, "").await
        }
        Protocol::Pop3 => {
            session::upstream::login::<session::Pop3>(tokens, target, limits, account, "").await
        }
        Protocol::Smtp => {
            session::upstream::login::<session::Smtp>(tokens, target, limits, account, EHLO_DOMAIN)
                .await
        }
    };
    let l = login.map_err(|e| login_failed(name, e))?;
    let server = l.server.to_string();
    let after = match protocol {
        Protocol::Imap => imap_sample(l).await,
        Protocol::Pop3 => pop3_stat(l).await,
        Protocol::Smtp => match &opts.send_test {
            Some(to) => smtp_send_test(l, &account.upstream_username, to).await,
            None => {
                wire(l).close(b"QUIT\r\n").await;
                Ok(String::new())
            }
        },
    };
    match after {
        Ok(m) if m.is_empty() => Ok(format!("logged in to {server}")),
        Ok(m) => Ok(format!("logged in to {server}; {m}")),
        Err(e) => {
            let error = format!("logged in to {server}, then: {e}");
            Err(failed(name, error.clone(), Failure::Other(&error)))
        }
    }
}

fn login_failed(account: &str, e: LoginError) -> Failed {
    let msg = e.to_string();
    let f = match &e {
        LoginError::Token(_) => Failure::Token(&msg),
        LoginError::Upstream(UpstreamFailure::Auth(a)) => Failure::Upstream(a),
        LoginError::Upstream(UpstreamFailure::Connect(_)) => Failure::Connect(&msg),
        LoginError::Upstream(UpstreamFailure::Other(_)) => Failure::Other(&msg),
    };
    failed(account, msg.clone(), f)
}
