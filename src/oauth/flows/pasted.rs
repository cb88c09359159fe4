//! The manual mode of the authorization code login, for a browser on another machine:
//! the user pastes back the address the browser was redirected to (which fails to load
//! there), and its `state` and code are used as a loopback redirect's would be.

use std::io::Write;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};
use url::Url;

use super::super::loopback;
use super::super::store::{TokenRecord, TokenStore};
use super::authorization_code::Pending;
use super::redirect::bind_redirect;
use super::{FlowError, LoginOptions, UrlSink};
use crate::config::Account;

/// The manual variant of [`login_authorization_code`](super::login_authorization_code), for a browser on another
/// machine: publishes the URL, then reads the address the browser was redirected to
/// (which fails to load there) from `input`, one line of at most
/// [`MAX_PASTED_URL`] bytes, checks its `state` and exchanges the code. No listener
/// is opened; the redirect URI is the account's `redirect_uri`, or
/// `http://127.0.0.1:PORT/` with `opts.redirect_port` (a free port when 0).
pub async fn login_authorization_code_manual<R: AsyncBufRead + Unpin>(
    account: &Account,
    store: &TokenStore,
    http: &reqwest::Client,
    opts: LoginOptions,
    input: R,
) -> Result<TokenRecord, FlowError> {
    let name = &account.username;
    store.load(name)?;
    let redirect = match &account.oauth.redirect_uri {
        Some(r) => r.clone(),
        None => {
            // A port nobody listens on: the remote browser shows an error page
            // whose address bar holds the code.
            let (listener, url) = bind_redirect(account, opts.redirect_port).await?;
            drop(listener);
            url
        }
    };
    let pending = Pending::new(account, &redirect)?;
    match &opts.url_sink {
        UrlSink::Channel(tx) => {
            let _ = tx.send(pending.url.clone());
        }
        UrlSink::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", pending.url);
            let _ = out.flush();
            eprintln!(
                "To log in account {name}: open the URL above in a browser on any machine and sign in.\n\
                 The browser is then sent to {redirect}... and shows an error page (nothing listens there).\n\
                 Copy the whole address from its address bar, paste it here and press Enter\n\
                 (waiting up to {}):",
                humantime::format_duration(opts.timeout)
            );
        }
    }
    let line = tokio::time::timeout(opts.timeout, read_pasted_line(input))
        .await
        .map_err(|_| FlowError::Timeout(opts.timeout))??;
    let query = pasted_query(&line)?;
    let callback = loopback::callback_from_query(&query, &pending.state).ok_or_else(|| {
        FlowError::ManualInput(
            "the pasted address has neither a `code` nor an `error` parameter; paste the full address the browser was sent to".into(),
        )
    })?;
    pending.finish(callback, account, store, http).await
}

/// Longest line accepted by the manual mode.
pub const MAX_PASTED_URL: usize = 16 * 1024;

/// The first non-blank line of `input`, without its line ending.
async fn read_pasted_line<R: AsyncBufRead + Unpin>(mut input: R) -> Result<String, FlowError> {
    loop {
        let mut buf = Vec::new();
        let n = (&mut input)
            .take(MAX_PASTED_URL as u64 + 1)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| FlowError::ManualInput(format!("cannot read the pasted address: {e}")))?;
        if n == 0 {
            return Err(FlowError::ManualInput(
                "no address was pasted (end of input)".into(),
            ));
        }
        if buf.len() > MAX_PASTED_URL {
            return Err(FlowError::ManualInput(format!(
                "the pasted line is longer than {MAX_PASTED_URL} bytes"
            )));
        }
        let line = String::from_utf8(buf)
            .map_err(|_| FlowError::ManualInput("the pasted address is not UTF-8".into()))?;
        let line = line.trim();
        if !line.is_empty() {
            return Ok(line.to_owned());
        }
    }
}

/// The query of a pasted redirect address: a full URL, or just `?code=..&state=..`.
fn pasted_query(line: &str) -> Result<String, FlowError> {
    if let Ok(url) = Url::parse(line)
        && url.has_host()
    {
        return Ok(url.query().unwrap_or_default().to_owned());
    }
    let q = line.split_once('?').map_or(line, |(_, q)| q);
    let q = q.split('#').next().unwrap_or_default();
    if q.contains('=') {
        Ok(q.to_owned())
    } else {
        Err(FlowError::ManualInput(
            "that does not look like the address the browser was sent to (expected http://127.0.0.1:PORT/?code=...&state=...)".into(),
        ))
    }
}
