//! The page's buttons and results: per-account forms (Re-authenticate / Log in,
//! Verify connection, Log out), the results of the last actions, a device code to
//! enter, the export / import forms, and the page the OAuth callback answers with.

use std::fmt::Write as _;

use super::logins::Activity;
use super::page::escape;
use crate::ops::status::AccountStatus;

/// A one-button form posting the CSRF token to `action`.
pub fn button(action: &str, csrf: &str, label: &str, class: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\" class=\"{class}\">{}</button></form>",
        escape(action),
        escape(csrf),
        escape(label)
    )
}

/// Path segment for an account name.
fn seg(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The label of the login button for `s`'s flow.
fn login_label(s: &AccountStatus) -> &'static str {
    match s.flow.as_str() {
        "authorization_code" => "Re-authenticate",
        "device_code" => "Log in with a device code",
        _ => "Fetch a token",
    }
}

/// The account's buttons.
pub fn account_buttons(s: &AccountStatus, csrf: &str) -> String {
    let base = format!("/accounts/{}", seg(&s.account));
    format!(
        "{} {} {}",
        button(&format!("{base}/login"), csrf, login_label(s), "login"),
        button(
            &format!("{base}/verify"),
            csrf,
            "Verify connection",
            "verify"
        ),
        button(&format!("{base}/logout"), csrf, "Log out", "logout"),
    )
}

/// The Re-authenticate button inside the needs-login banner.
pub fn banner_button(s: &AccountStatus, csrf: &str) -> String {
    button(
        &format!("/accounts/{}/login", seg(&s.account)),
        csrf,
        login_label(s),
        "login",
    )
}

/// The results of the last actions, newest state per account; a device code being
/// waited for is shown with where to enter it.
pub fn activities(list: &[(String, Activity)]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let mut b = String::from("<h2>Results</h2>\n<ul id=\"messages\">\n");
    for (account, a) in list {
        let class = match a.ok {
            None => "wait",
            Some(true) => "ok",
            Some(false) => "fail",
        };
        let word = match a.ok {
            None => "in progress",
            Some(true) => "ok",
            Some(false) => "FAILED",
        };
        let _ = write!(
            b,
            "<li class=\"{class}\" data-account=\"{}\" data-action=\"{}\"><strong>{}</strong> {}: {word}",
            escape(account),
            a.action,
            escape(account),
            a.action,
        );
        if let Some(p) = &a.device {
            let uri = p
                .verification_uri_complete
                .as_ref()
                .unwrap_or(&p.verification_uri);
            let _ = write!(
                b,
                "<p class=\"device\">Waiting for approval: open <a href=\"{}\" rel=\"noopener noreferrer\" target=\"_blank\">{}</a> \
and enter the code <code id=\"user-code\">{}</code></p>",
                escape(uri.as_str()),
                escape(p.verification_uri.as_str()),
                escape(&p.user_code)
            );
        }
        let at = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(a.at),
        );
        let _ = writeln!(
            b,
            " <span class=\"muted\">({at})</span><pre>{}</pre></li>",
            escape(&a.text)
        );
    }
    b.push_str("</ul>\n");
    b
}

/// A `<meta>` reloading the page while anything is in progress.
pub fn refresh_meta(list: &[(String, Activity)]) -> &'static str {
    if list
        .iter()
        .any(|(_, a)| a.ok.is_none() && a.device.is_some())
    {
        "<meta http-equiv=\"refresh\" content=\"3\">"
    } else {
        ""
    }
}

/// Export and import forms.
pub fn transfer_forms(csrf: &str) -> String {
    let csrf = escape(csrf);
    format!(
        "<h2>Export / import</h2>\n\
<form id=\"export\" method=\"post\" action=\"/export\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label>Passphrase (at least {min} characters) <input type=\"password\" name=\"passphrase\" minlength=\"{min}\" required autocomplete=\"new-password\"></label> \
<button type=\"submit\">Download export</button></form>\n\
<form id=\"import\" method=\"post\" action=\"/import\" enctype=\"multipart/form-data\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label>Export file <input type=\"file\" name=\"file\" required></label> \
<label>Passphrase <input type=\"password\" name=\"passphrase\" required autocomplete=\"off\"></label> \
<button type=\"submit\">Import</button></form>\n",
        min = crate::ops::passphrase::MIN_LEN
    )
}

/// The page `/oauth/callback` answers with: the outcome, then on to the overview
/// (a same-site navigation, so the session cookie comes along again).
pub fn callback(text: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"1;url=/\"><title>oauth-mail-proxy admin</title></head>\
<body><p id=\"result\">{}</p><p><a href=\"/\">Back to the overview</a></p></body></html>\n",
        escape(text)
    )
}

/// The page a Re-authenticate button answers with: on to the authorization server.
pub fn to_provider(url: &url::Url) -> String {
    let url = escape(url.as_str());
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>oauth-mail-proxy admin</title></head>\
<body><p>Continuing to the <a id=\"authorize\" href=\"{url}\">authorization server</a>...</p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::device::DevicePrompt;

    #[test]
    fn a_device_code_in_progress_is_shown_and_reloads_the_page() {
        let prompt = DevicePrompt {
            verification_uri: url::Url::parse("https://example.com/device").unwrap(),
            verification_uri_complete: None,
            user_code: "AB<CD".into(),
            expires_in: std::time::Duration::from_secs(600),
        };
        let waiting = Activity {
            ok: None,
            action: "login",
            text: "waiting for approval".into(),
            device: Some(prompt),
            at: 0,
        };
        let list = vec![("bob@example.com".to_string(), waiting.clone())];
        let html = activities(&list);
        assert!(html.contains("class=\"wait\""), "{html}");
        assert!(
            html.contains("<code id=\"user-code\">AB&lt;CD</code>"),
            "{html}"
        );
        assert!(
            html.contains("href=\"https://example.com/device\""),
            "{html}"
        );
        assert!(refresh_meta(&list).contains("refresh"));
        let done = Activity {
            ok: Some(true),
            device: None,
            ..waiting
        };
        assert_eq!(refresh_meta(&[("b".into(), done)]), "");
    }

    #[test]
    fn account_names_are_encoded_in_form_actions() {
        let s = button(
            &format!("/accounts/{}/login", seg("a b@x")),
            "t",
            "Go",
            "login",
        );
        assert!(s.contains("action=\"/accounts/a%20b%40x/login\""), "{s}");
    }
}
