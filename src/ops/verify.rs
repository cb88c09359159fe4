//! `verify`: a real upstream login per account on every listener, with the account's
//! token from the [`TokenManager`] (refreshed when needed), through the same
//! [`session::upstream::login`] a client session uses. IMAP also reports the INBOX
//! message count and the oldest message's Subject and Date; SMTP can send a test
//! message. A failure is classified ([`classify`]) into what to do.

use std::time::Duration;

use tokio::time::Instant;

use super::OpsError;
use super::classify::{Diagnosis, Failure, classify};
use super::wire::{Wire, clip, smtp_reply};
use crate::config::{Account, Config, Listener, Protocol};
use crate::connector::Target;
use crate::oauth::TokenManager;
use crate::proto::Limits;
use crate::session::{self, LoggedIn, LoginError, UpstreamFailure};

/// EHLO name used upstream by `verify`.
const EHLO_DOMAIN: &str = "localhost";
/// Time for the commands after the login (SELECT/FETCH, STAT, the test message).
const AFTER_LOGIN: Duration = Duration::from_secs(30);

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

fn wire(l: LoggedIn) -> Wire {
    Wire::new(l.stream, l.leftover, Instant::now() + AFTER_LOGIN)
}

/// SELECT INBOX, then the first (oldest) message's Subject and Date.
async fn imap_sample(l: LoggedIn) -> Result<String, String> {
    let mut w = wire(l);
    w.send(b"V1 SELECT INBOX\r\n").await?;
    let mut exists = None;
    let end = imap_until_tagged(&mut w, "V1", |line, _| {
        if let Some(n) = line
            .strip_prefix("* ")
            .and_then(|r| r.strip_suffix(" EXISTS"))
            .and_then(|n| n.trim().parse::<u64>().ok())
        {
            exists = Some(n);
        }
    })
    .await?;
    check_ok(&end, "SELECT INBOX")?;
    let exists = exists.ok_or("SELECT INBOX: no EXISTS count")?;
    if exists == 0 {
        w.close(b"V3 LOGOUT\r\n").await;
        return Ok("INBOX has 0 messages".into());
    }
    w.send(b"V2 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT DATE)])\r\n")
        .await?;
    let mut header = Vec::new();
    let end = imap_until_tagged(&mut w, "V2", |_, literal| {
        if let Some(l) = literal {
            header.extend_from_slice(l);
        }
    })
    .await?;
    check_ok(&end, "FETCH 1")?;
    w.close(b"V3 LOGOUT\r\n").await;
    let text = String::from_utf8_lossy(&header);
    let subject = header_field(&text, "subject").unwrap_or_else(|| "(none)".into());
    let date = header_field(&text, "date").unwrap_or_else(|| "(none)".into());
    Ok(format!(
        "INBOX has {exists} message(s); oldest: Subject \"{}\", Date {}",
        clip(&subject),
        clip(&date)
    ))
}

fn check_ok(tagged: &str, what: &str) -> Result<(), String> {
    match tagged.split_whitespace().nth(1) {
        Some(s) if s.eq_ignore_ascii_case("OK") => Ok(()),
        _ => Err(format!("{what}: {}", clip(tagged))),
    }
}

/// Reads responses until the tagged one (returned); `each` sees every line and, for
/// a line ending in a literal `{n}`, the literal's bytes.
async fn imap_until_tagged(
    w: &mut Wire,
    tag: &str,
    mut each: impl FnMut(&str, Option<&[u8]>),
) -> Result<String, String> {
    let prefix = format!("{tag} ");
    for _ in 0..10_000 {
        let line = w.line().await?;
        if line.starts_with(&prefix) {
            return Ok(line);
        }
        let literal = line
            .strip_suffix('}')
            .and_then(|l| l.rsplit_once('{'))
            .and_then(|(_, n)| n.trim_end_matches('+').parse::<usize>().ok());
        match literal {
            Some(n) => {
                let bytes = w.bytes(n).await?;
                each(&line, Some(&bytes));
            }
            None => each(&line, None),
        }
    }
    Err("too many responses".into())
}

/// The unfolded value of header `name` (case-insensitive), if present.
fn header_field(text: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in text.split("\r\n").flat_map(|l| l.split('\n')) {
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

/// POP3: STAT (message count).
async fn pop3_stat(l: LoggedIn) -> Result<String, String> {
    let mut w = wire(l);
    w.send(b"STAT\r\n").await?;
    let line = w.line().await?;
    w.close(b"QUIT\r\n").await;
    let count = line
        .strip_prefix("+OK ")
        .and_then(|r| r.split_whitespace().next())
        .ok_or_else(|| format!("STAT: {}", clip(&line)))?;
    Ok(format!("mailbox has {count} message(s)"))
}

/// MAIL FROM the upstream identity, RCPT `to`, DATA with a short message.
async fn smtp_send_test(l: LoggedIn, from: &str, to: &str) -> Result<String, String> {
    let mut w = wire(l);
    let mut step = async |cmd: String, want: u16| -> Result<String, String> {
        w.send(cmd.as_bytes()).await?;
        let (code, text) = smtp_reply(&mut w).await?;
        if code / 100 != want / 100 {
            let shown = cmd.split("\r\n").next().unwrap_or("").to_string();
            return Err(format!("{shown}: {code} {}", clip(&text)));
        }
        Ok(format!("{code} {}", clip(&text)))
    };
    step(format!("MAIL FROM:<{from}>\r\n"), 250).await?;
    step(format!("RCPT TO:<{to}>\r\n"), 250).await?;
    step("DATA\r\n".into(), 354).await?;
    let id = crate::secret::random_token(12);
    let msg = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: oauth-mail-proxy test message\r\nDate: {}\r\nMessage-ID: <{id}@oauth-mail-proxy>\r\n\r\nThis is a test message sent by `oauth-mail-proxy verify --send-test`.\r\nThe account's OAuth login to this SMTP server works.\r\n.\r\n",
        rfc5322_date(crate::oauth::outcome::unix_now())
    );
    let accepted = step(msg, 250).await?;
    w.close(b"QUIT\r\n").await;
    Ok(format!("test message to {to} accepted ({accepted})"))
}

/// A plausible mailbox for RCPT: `local@domain`, no spaces, brackets or controls.
fn check_address(a: &str) -> Result<(), OpsError> {
    let ok = a.len() <= 254
        && a.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'));
    if ok {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "--send-test: \"{a}\" is not an address like name@example.com"
        )))
    }
}

/// `Tue, 01 Jul 2025 12:00:00 +0000` for unix seconds `t`.
fn rfc5322_date(t: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t / 86_400;
    let secs = t % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_709_210_096),
            "Thu, 29 Feb 2024 12:34:56 +0000"
        );
    }

    #[test]
    fn headers() {
        let h = "Subject: hello\r\n  world\r\nDATE: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n";
        assert_eq!(header_field(h, "subject").as_deref(), Some("hello world"));
        assert_eq!(
            header_field(h, "date").as_deref(),
            Some("Mon, 1 Jan 2024 00:00:00 +0000")
        );
        assert_eq!(header_field(h, "from"), None);
    }

    #[test]
    fn addresses() {
        assert!(check_address("bob@example.com").is_ok());
        for bad in ["bob", "@x", "a@", "a b@c", "a@b>\r\nRSET", "<a@b>"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
