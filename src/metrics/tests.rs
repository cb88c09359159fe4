//! Unit tests of the exposition text: it parses, and the values are right.

use super::*;

/// One parsed sample: (name, labels, value).
type Sample = (String, Vec<(String, String)>, f64);

/// One sample line: (name, labels, value). Panics on a malformed line.
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            let (kw, name) = (w.next().unwrap(), w.next().unwrap());
            assert!(matches!(kw, "HELP" | "TYPE"), "{line}");
            assert!(name.starts_with(PREFIX), "{line}");
            if kw == "TYPE" {
                assert!(matches!(w.next(), Some("counter" | "gauge")), "{line}");
                assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value.parse().expect("numeric value");
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').unwrap())),
        };
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert!(typed.contains(name), "sample before its TYPE: {line}");
        out.push((name.to_string(), labels, value));
    }
    out
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut val = String::new();
        loop {
            match chars.next().expect("closing quote") {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(c @ ('\\' | '"')) => val.push(c),
                    other => panic!("bad escape {other:?}"),
                },
                '"' => break,
                c => val.push(c),
            }
        }
        out.push((key, val));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == &format!("{PREFIX}_{name}")
                && l.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.2)
}

#[test]
fn renders_parseable_text_with_the_right_values() {
    let m = Metrics::new();
    let imap = m.listener("imap 127.0.0.1:1143");
    let g1 = imap.connection_opened();
    let g2 = imap.connection_opened();
    drop(g1);
    imap.add_bytes(10, 2000);
    m.login_ok();
    m.login_failed(LoginFailure::BadCredentials);
    m.login_failed(LoginFailure::BadCredentials);
    m.login_failed(LoginFailure::NeedsLogin);
    m.refresh(true);
    m.refresh(false);
    m.upstream_auth_failed();
    m.preauth_rejected(PreauthReject::LineTooLong);
    let accounts = [
        AccountGauge {
            account: "a@example.com".into(),
            expires_at: Some(1_000_100),
            needs_login: false,
        },
        AccountGauge {
            account: "b@example.com".into(),
            expires_at: Some(999_000),
            needs_login: true,
        },
        AccountGauge {
            account: "c@example.com".into(),
            expires_at: None,
            needs_login: true,
        },
    ];
    let s = parse(&m.render_with_accounts(&accounts, 1_000_000));
    let l = ("listener", "imap 127.0.0.1:1143");
    assert_eq!(value(&s, "connections_open", &[l]), Some(1.0));
    assert_eq!(value(&s, "connections_total", &[l]), Some(2.0));
    assert_eq!(
        value(
            &s,
            "spliced_bytes_total",
            &[l, ("direction", "client_to_upstream")]
        ),
        Some(10.0)
    );
    assert_eq!(
        value(
            &s,
            "spliced_bytes_total",
            &[l, ("direction", "upstream_to_client")]
        ),
        Some(2000.0)
    );
    assert_eq!(value(&s, "logins_ok_total", &[]), Some(1.0));
    assert_eq!(
        value(&s, "logins_failed_total", &[("reason", "bad_credentials")]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "logins_failed_total", &[("reason", "needs_login")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "logins_failed_total", &[("reason", "throttled")]),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "token_refreshes_total", &[("result", "ok")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "token_refreshes_total", &[("result", "failed")]),
        Some(1.0)
    );
    assert_eq!(value(&s, "upstream_auth_failures_total", &[]), Some(1.0));
    assert_eq!(
        value(
            &s,
            "preauth_rejections_total",
            &[("reason", "line_too_long")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "preauth_rejections_total", &[("reason", "busy")]),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "token_expiry_seconds", &[("account", "a@example.com")]),
        Some(100.0)
    );
    assert_eq!(
        value(&s, "token_expiry_seconds", &[("account", "b@example.com")]),
        Some(-1000.0)
    );
    assert_eq!(
        value(&s, "token_expiry_seconds", &[("account", "c@example.com")]),
        None
    );
    assert_eq!(
        value(&s, "account_needs_login", &[("account", "c@example.com")]),
        Some(1.0)
    );
    assert_eq!(value(&s, "accounts_needing_login", &[]), Some(2.0));
    drop(g2);
    assert_eq!(imap.open(), 0);
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new();
    let odd = "we\\ird \"name\"\nline";
    m.listener(odd).connection_opened();
    let text = m.render_with_accounts(&[], 0);
    assert!(
        text.contains(r#"listener="we\\ird \"name\"\nline""#),
        "{text}"
    );
    let s = parse(&text);
    assert_eq!(
        value(&s, "connections_total", &[("listener", odd)]),
        Some(1.0)
    );
    // Every sample line is on one line: the newline did not split it.
    assert!(
        text.lines()
            .all(|l| l.starts_with('#') || l.starts_with(PREFIX)),
        "{text}"
    );
}

#[test]
fn the_account_source_feeds_render() {
    let m = Metrics::new();
    assert!(!m.render().contains("token_expiry_seconds{"));
    m.set_account_source(Arc::new(|| {
        vec![AccountGauge {
            account: "x@example.com".into(),
            expires_at: Some(u64::MAX / 2),
            needs_login: false,
        }]
    }));
    let s = parse(&m.render());
    assert!(value(&s, "token_expiry_seconds", &[("account", "x@example.com")]).unwrap() > 0.0);
    assert_eq!(value(&s, "accounts_needing_login", &[]), Some(0.0));
}
