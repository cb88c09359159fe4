//! The admin web page, rendered on the server: plain HTML with a little inline CSS,
//! no JavaScript, no external assets. Every value from outside is HTML-escaped.
//! The buttons and results are in [`super::page_actions`].

use std::fmt::Write as _;

use super::logins::Activity;
use super::page_actions as actions;
use crate::ops::status::AccountStatus;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#222}\
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}\
th{background:#f3f3f3}.banner{background:#fff3cd;border:1px solid #e0b000;padding:.6rem 1rem;\
margin:1rem 0}.error{color:#a00}.muted{color:#777}form.inline{display:inline}\
header{display:flex;justify-content:space-between;align-items:center}\
li.ok{color:#060}li.fail{color:#a00}li.wait{color:#850}pre{white-space:pre-wrap;margin:.2rem 0}\
form#export,form#import{margin:.5rem 0}";

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    document_with(title, "", body)
}

/// `head` is extra trusted markup for `<head>`.
fn document_with(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{head}\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>\n{body}</body></html>\n",
        escape(title)
    )
}

/// The login form. `csrf` goes in a hidden field (and in the login cookie).
pub fn login(csrf: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"error\">{}</p>\n", escape(e)))
        .unwrap_or_default();
    document(
        "oauth-mail-proxy admin: log in",
        &format!(
            "<h1>oauth-mail-proxy admin</h1>\n{error}\
<form method=\"post\" action=\"/login\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label>Admin password <input type=\"password\" name=\"password\" autocomplete=\"current-password\" autofocus required></label> \
<button type=\"submit\">Log in</button></form>\n",
            escape(csrf)
        ),
    )
}

fn time(t: Option<u64>) -> String {
    match t {
        Some(s) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(s),
        )
        .to_string(),
        None => "-".into(),
    }
}

fn valid_until(s: &AccountStatus) -> String {
    match (s.token_present, s.access_token_valid) {
        (false, _) => "no token".into(),
        (true, _) if s.encrypted_with_client_password => {
            "unknown (encrypted with the client password)".into()
        }
        (true, true) => time(s.access_token_valid_until),
        (true, false) => format!("expired {}", time(s.access_token_valid_until)),
    }
}

/// The token overview: a banner naming the accounts that need a login, then one row
/// per account with its buttons, the results of the last actions, export / import.
/// `csrf` is the session's anti-CSRF token, for the forms.
pub fn overview(
    list: &[AccountStatus],
    activity: &[(String, Activity)],
    csrf: &str,
    now: u64,
) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<header><h1>oauth-mail-proxy admin</h1>\
<form class=\"inline\" method=\"post\" action=\"/logout\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Log out</button></form></header>",
        escape(csrf)
    );
    let needing: Vec<&AccountStatus> = list.iter().filter(|s| s.needs_login).collect();
    if !needing.is_empty() {
        b.push_str("<div class=\"banner\" id=\"needs-login\"><strong>These accounts need a login:</strong><ul>");
        for s in &needing {
            let name = escape(&s.account);
            let _ = write!(
                b,
                "<li><span class=\"account\">{name}</span>: {} (or run <code>oauth-mail-proxy login {name}</code>)</li>",
                actions::banner_button(s, csrf)
            );
        }
        b.push_str("</ul></div>\n");
    }
    let expiring: Vec<&AccountStatus> = list.iter().filter(|s| s.refresh_token_expiring).collect();
    if !expiring.is_empty() {
        b.push_str("<div class=\"banner\" id=\"refresh-expiring\"><strong>Refresh tokens expiring soon:</strong><ul>");
        for s in &expiring {
            let _ = write!(
                b,
                "<li>{}: {}</li>",
                escape(&s.account),
                time(s.refresh_token_valid_until)
            );
        }
        b.push_str("</ul></div>\n");
    }
    b.push_str(
        "<h2>Tokens</h2>\n<table id=\"accounts\"><thead><tr><th>Account</th><th>Flow</th>\
<th>Valid until</th><th>Refresh token</th><th>Last refresh</th><th>Last error</th><th>Actions</th></tr></thead><tbody>\n",
    );
    for s in list {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.account),
            escape(&s.flow),
            escape(&valid_until(s)),
            if s.refresh_token_present { "yes" } else { "no" },
            time(s.last_refresh),
            s.last_error
                .as_deref()
                .map(escape)
                .unwrap_or_else(|| "-".into()),
            actions::account_buttons(s, csrf),
        );
    }
    if list.is_empty() {
        b.push_str("<tr><td colspan=\"7\" class=\"muted\">No accounts configured.</td></tr>\n");
    }
    let _ = writeln!(
        b,
        "</tbody></table>\n<p class=\"muted\">As of {}. Times are UTC.</p>",
        time(Some(now))
    );
    b.push_str(&actions::activities(activity));
    b.push_str(&actions::transfer_forms(csrf));
    document_with(
        "oauth-mail-proxy admin",
        actions::refresh_meta(activity),
        &b,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(account: &str, needs_login: bool) -> AccountStatus {
        AccountStatus {
            account: account.into(),
            flow: "authorization_code".into(),
            token_present: !needs_login,
            access_token_valid_until: Some(1_700_000_000),
            access_token_valid: !needs_login,
            refresh_token_present: true,
            last_refresh: None,
            last_error: needs_login.then(|| "refresh token rejected: <invalid_grant>".into()),
            needs_login,
            encrypted_with_client_password: false,
            refresh_token_valid_until: None,
            refresh_token_expiring: false,
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn overview_lists_accounts_and_the_banner() {
        let list = [
            status("ok@example.com", false),
            status("<b>@example.com", true),
        ];
        let html = overview(&list, &[], "tok", 1_700_000_000);
        assert!(html.contains("<td>ok@example.com</td>"), "{html}");
        assert!(html.contains("2023-11-14T22:13:20Z"), "{html}");
        assert!(html.contains("id=\"needs-login\""), "{html}");
        assert!(
            html.contains("oauth-mail-proxy login &lt;b&gt;@example.com"),
            "{html}"
        );
        assert!(html.contains("&lt;invalid_grant&gt;"), "{html}");
        assert!(!html.contains("<b>@"), "unescaped: {html}");
        assert!(html.contains("name=\"csrf\" value=\"tok\""), "{html}");
        let html = overview(&list[..1], &[], "tok", 0);
        assert!(!html.contains("needs-login"), "{html}");
    }

    #[test]
    fn login_form_carries_the_csrf_token() {
        let html = login("abc", Some("wrong password"));
        assert!(html.contains("name=\"csrf\" value=\"abc\""), "{html}");
        assert!(html.contains("wrong password"), "{html}");
        assert!(html.contains("type=\"password\""), "{html}");
    }
}
