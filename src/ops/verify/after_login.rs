//! What `verify` does once a listener's upstream login succeeded: IMAP selects INBOX
//! and reads the oldest message's Subject and Date, POP3 asks STAT, SMTP sends the
//! `--send-test` message. Each answers a line for the report or an error text.

use std::time::Duration;

use tokio::time::Instant;

use crate::ops::OpsError;
use crate::ops::wire::{Wire, clip, smtp_reply};
use crate::session::LoggedIn;

/// Time for the commands after the login (SELECT/FETCH, STAT, the test message).
const AFTER_LOGIN: Duration = Duration::from_secs(30);

pub(super) fn wire(l: LoggedIn) -> Wire {
    Wire::new(l.stream, l.leftover, Instant::now() + AFTER_LOGIN)
}

/// SELECT INBOX, then the first (oldest) message's Subject and Date.
pub(super) async fn imap_sample(l: LoggedIn) -> Result<String, String> {
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
pub(super) async fn pop3_stat(l: LoggedIn) -> Result<String, String> {
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
pub(super) async fn smtp_send_test(l: LoggedIn, from: &str, to: &str) -> Result<String, String> {
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
pub(super) fn check_address(a: &str) -> Result<(), OpsError> {
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
