//! `[proxy] admin`, `admin_password_hash` and `drain_timeout`.

use super::*;

/// Default `drain_timeout`: how long spliced sessions may go on after SIGTERM.
pub(super) const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin listener, if configured. A non-loopback address needs a password hash;
/// a loopback one without it serves only `/healthz` and `/readyz` (a warning says so).
pub(super) fn resolve(
    cx: &Ctx,
    p: &raw::Proxy,
    warnings: &mut Vec<String>,
) -> Result<Option<AdminConfig>, ConfigError> {
    let hash = match &p.admin_password_hash {
        None => None,
        Some(h) => {
            crate::accounts::check_phc(h.get_ref()).map_err(|e| {
                cx.invalid(
                    h,
                    "proxy.admin_password_hash",
                    format!("{e}; create one with `oauth-mail-proxy hash-password`"),
                )
            })?;
            Some(h.get_ref().clone())
        }
    };
    let Some(a) = &p.admin else {
        return Ok(None);
    };
    let bind: SocketAddr = a.get_ref().parse().map_err(|_| {
        cx.invalid(
            a,
            "proxy.admin",
            "expected IP:PORT, e.g. \"127.0.0.1:8025\" or \"[::1]:8025\"",
        )
    })?;
    let where_ = |msg: &str| format!("{}:{}: `proxy.admin`: {msg}", cx.file, cx.line(a.span()));
    match (&hash, bind.ip().is_loopback()) {
        (None, false) => {
            return Err(cx.invalid(
                a,
                "proxy.admin",
                "a non-loopback admin listener needs `admin_password_hash` (or `admin_password_hash_env`)",
            ));
        }
        (None, true) => warnings.push(where_(
            "no `admin_password_hash`: only /healthz and /readyz are usable",
        )),
        (Some(_), false) => warnings.push(where_(
            "the admin listener is reachable from the network over plain HTTP; prefer loopback behind a TLS reverse proxy",
        )),
        (Some(_), true) => {}
    }
    Ok(Some(AdminConfig {
        bind,
        password_hash: hash,
    }))
}
