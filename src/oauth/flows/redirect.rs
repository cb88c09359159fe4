//! The interactive authorization code login with a loopback redirect (RFC 8252 §7.3):
//! bind the redirect listener (`http://`, or `https://` with [`redirect_tls`]), publish
//! the authorization URL (and open a browser), wait for the browser to come back, and
//! exchange the code.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use url::Url;

use super::super::loopback;
use super::super::store::{TokenRecord, TokenStore};
use super::authorization_code::Pending;
use super::{FlowError, LoginOptions, UrlSink};
use crate::config::Account;

/// Runs the interactive login for `account` and saves the tokens in `store`.
///
/// Binds `127.0.0.1:<redirect_port>`, publishes the authorization URL (see
/// [`UrlSink`]), waits up to `opts.timeout` for the browser's redirect, exchanges the
/// code with the PKCE verifier and saves the record (clearing any needs-login mark).
pub async fn login_authorization_code(
    account: &Account,
    store: &TokenStore,
    http: &reqwest::Client,
    opts: LoginOptions,
) -> Result<TokenRecord, FlowError> {
    let name = &account.username;
    // Fail before involving the user if the existing file could not be replaced.
    store.load(name)?;

    let tls = match (&account.oauth.redirect_uri, &opts.redirect_tls) {
        (Some(r), None) if r.scheme() == "https" => {
            return Err(FlowError::Config(format!(
                "redirect_uri {r} is https:// but no certificate was given for it"
            )));
        }
        (Some(r), Some(cfg)) if r.scheme() == "https" => {
            Some(tokio_rustls::TlsAcceptor::from(Arc::clone(cfg)))
        }
        _ => None,
    };
    let (listener, redirect) = bind_redirect(account, opts.redirect_port).await?;
    let expected_path = redirect.path().to_owned();
    let pending = Pending::new(account, &redirect)?;

    publish(&pending.url, &opts, name, redirect.as_str());
    let deadline = tokio::time::Instant::now() + opts.timeout;
    let callback =
        loopback::wait_for_callback(listener, tls, &expected_path, &pending.state, deadline).await;
    let Some(callback) = callback else {
        return Err(FlowError::Timeout(opts.timeout));
    };
    pending.finish(callback, account, store, http).await
}

/// The TLS server config for `account`'s `https://` loopback `redirect_uri` (`None`
/// for `http://` or none): the first listener's configured certificate, else the
/// generated local one in `state_dir` (created on first use; its SANs are
/// `localhost`, `127.0.0.1` and `::1`). The browser must trust it (or the user
/// accepts the warning once).
pub fn redirect_tls(
    config: &crate::config::Config,
    account: &Account,
) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, FlowError> {
    if account
        .oauth
        .redirect_uri
        .as_ref()
        .is_none_or(|r| r.scheme() != "https")
    {
        return Ok(None);
    }
    let (cert, key) = match config.listeners.iter().find_map(|l| l.cert.clone()) {
        Some(pair) => pair,
        None => crate::tls::ensure_generated(&config.proxy.state_dir)
            .map_err(|e| FlowError::Config(format!("local certificate: {e}")))?,
    };
    crate::tls::server_config(&cert, &key)
        .map(Some)
        .map_err(|e| FlowError::Config(format!("certificate for the https redirect: {e}")))
}

/// Binds the loopback redirect listener: the account's `redirect_uri` if it has
/// one, else `127.0.0.1:port` (`port` 0 = any free port).
pub(super) async fn bind_redirect(
    account: &Account,
    port: u16,
) -> Result<(TcpListener, Url), FlowError> {
    let (addr, fixed) = match &account.oauth.redirect_uri {
        Some(r) => {
            let rport = r.port_or_known_default().unwrap_or(80);
            if port != 0 && port != rport {
                return Err(FlowError::Config(format!(
                    "--port {port} conflicts with the account's redirect_uri {r}"
                )));
            }
            let ip = match r.host() {
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
                _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            (SocketAddr::new(ip, rport), Some(r.clone()))
        }
        None => (SocketAddr::from((Ipv4Addr::LOCALHOST, port)), None),
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| FlowError::Bind {
            port: addr.port(),
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| FlowError::Bind { port, source })?
        .port();
    let url = match fixed {
        Some(u) => u,
        None => Url::parse(&format!("http://127.0.0.1:{port}/"))
            .map_err(|e| FlowError::Internal(e.to_string()))?,
    };
    Ok((listener, url))
}

/// Hands the URL to the sink and, if asked, to a browser.
fn publish(url: &Url, opts: &LoginOptions, account: &str, redirect: &str) {
    match &opts.url_sink {
        UrlSink::Channel(tx) => {
            let _ = tx.send(url.clone());
        }
        UrlSink::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{url}");
            let _ = out.flush();
            eprintln!(
                "To log in account {account}, open the URL above (also below) in a browser on this machine.\n\
                 Waiting up to {} for the redirect to {redirect} ...\n{url}",
                humantime::format_duration(opts.timeout)
            );
        }
    }
    if opts.open_browser {
        open_browser(url);
    }
}

fn open_browser(url: &Url) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = tokio::process::Command::new(opener)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            // Reap it in the background; its exit status does not matter.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => eprintln!("Could not start `{opener}` ({e}); open the URL by hand."),
    }
}
