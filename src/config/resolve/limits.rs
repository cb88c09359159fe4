//! The limit keys: pre-auth limits and timeouts in `[proxy]`, each overridable per
//! `[[listener]]`, and the global connection caps (`[proxy]` only).

use super::*;

/// Default post-login idle timeout: longer than the 29 minutes after which RFC 2177
/// IMAP IDLE clients re-issue IDLE (and than the 30-minute autologout of RFC 9051).
pub(super) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(35 * 60);
/// An IMAP listener's idle timeout below this gets a warning.
pub(super) const IDLE_WARNING_BELOW: Duration = Duration::from_secs(31 * 60);
/// Shortest accepted `preauth_timeout` / `idle_timeout`.
const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest accepted byte limit: these bound what one unauthenticated client may make
/// the proxy buffer.
const MAX_BYTES: i64 = 1 << 20;

/// `(key, minimum, maximum)` of each integer limit.
const MAX_LINE: (&str, i64, i64) = ("max_line", 512, MAX_BYTES);
const MAX_LITERAL: (&str, i64, i64) = ("max_literal", 256, MAX_BYTES);
const MAX_SASL: (&str, i64, i64) = ("max_sasl", 512, MAX_BYTES);
const MAX_AUTH_FAILURES: (&str, i64, i64) = ("max_auth_failures", 1, 100);
const MAX_ERRORS: (&str, i64, i64) = ("max_errors", 1, 100);
const MAX_CONNECTIONS: (&str, i64, i64) = ("max_connections", 1, 1_000_000);
const MAX_PER_SOURCE: (&str, i64, i64) = ("max_connections_per_source", 0, 1_000_000);

/// The resolved `[proxy]` limit keys.
pub(super) struct ProxyLimits {
    pub limits: Limits,
    pub preauth_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_source: usize,
}

/// An integer key within `(name, min, max)`; `section` is "proxy" or "listener".
fn int(
    cx: &Ctx,
    v: &Option<Spanned<i64>>,
    section: &str,
    (name, min, max): (&str, i64, i64),
) -> Result<Option<usize>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let n = *v.get_ref();
    if n < min || n > max {
        return Err(cx.invalid(
            v,
            &format!("{section}.{name}"),
            format!("must be between {min} and {max}, found {n}"),
        ));
    }
    Ok(Some(n as usize))
}

/// A timeout key of at least [`MIN_TIMEOUT`].
fn timeout(
    cx: &Ctx,
    v: &Option<Spanned<String>>,
    key: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let d = cx.duration(v, key, default)?;
    match v {
        Some(s) if d < MIN_TIMEOUT => Err(cx.invalid(s, key, "must be at least 1s")),
        _ => Ok(d),
    }
}

/// The five pre-auth limits of a section, each falling back to `base`.
#[allow(clippy::too_many_arguments)]
fn limits(
    cx: &Ctx,
    section: &str,
    base: Limits,
    line: &Option<Spanned<i64>>,
    literal: &Option<Spanned<i64>>,
    sasl: &Option<Spanned<i64>>,
    failures: &Option<Spanned<i64>>,
    errors: &Option<Spanned<i64>>,
) -> Result<Limits, ConfigError> {
    let count = |v, b| int(cx, v, section, b).map(|n| n.map(|n| n as u32));
    Ok(Limits {
        max_line: int(cx, line, section, MAX_LINE)?.unwrap_or(base.max_line),
        max_literal: int(cx, literal, section, MAX_LITERAL)?.unwrap_or(base.max_literal),
        max_sasl: int(cx, sasl, section, MAX_SASL)?.unwrap_or(base.max_sasl),
        max_auth_failures: count(failures, MAX_AUTH_FAILURES)?.unwrap_or(base.max_auth_failures),
        max_errors: count(errors, MAX_ERRORS)?.unwrap_or(base.max_errors),
    })
}

pub(super) fn proxy(cx: &Ctx, p: &raw::Proxy) -> Result<ProxyLimits, ConfigError> {
    Ok(ProxyLimits {
        limits: limits(
            cx,
            "proxy",
            Limits::default(),
            &p.max_line,
            &p.max_literal,
            &p.max_sasl,
            &p.max_auth_failures,
            &p.max_errors,
        )?,
        preauth_timeout: timeout(
            cx,
            &p.preauth_timeout,
            "proxy.preauth_timeout",
            Duration::from_secs(60),
        )?,
        idle_timeout: timeout(
            cx,
            &p.idle_timeout,
            "proxy.idle_timeout",
            DEFAULT_IDLE_TIMEOUT,
        )?,
        max_connections: int(cx, &p.max_connections, "proxy", MAX_CONNECTIONS)?
            .unwrap_or(crate::listener::MAX_CONNECTIONS),
        max_connections_per_source: int(
            cx,
            &p.max_connections_per_source,
            "proxy",
            MAX_PER_SOURCE,
        )?
        .unwrap_or(1_000),
    })
}

/// A listener's `(limits, preauth_timeout, idle_timeout)`: its own keys win over
/// `[proxy]`'s.
pub(super) fn listener(
    cx: &Ctx,
    l: &raw::Listener,
    proxy: &Proxy,
) -> Result<(Limits, Duration, Duration), ConfigError> {
    let limits = limits(
        cx,
        "listener",
        proxy.limits,
        &l.max_line,
        &l.max_literal,
        &l.max_sasl,
        &l.max_auth_failures,
        &l.max_errors,
    )?;
    let preauth = timeout(
        cx,
        &l.preauth_timeout,
        "listener.preauth_timeout",
        proxy.preauth_timeout,
    )?;
    let idle = timeout(
        cx,
        &l.idle_timeout,
        "listener.idle_timeout",
        proxy.idle_timeout,
    )?;
    Ok((limits, preauth, idle))
}

/// Warnings for IMAP listeners whose idle timeout may cut IMAP IDLE clients off,
/// naming the key that set it (the listener's, else `[proxy]`'s).
pub(super) fn warnings(cx: &Ctx, raw: &raw::File, listeners: &[Listener]) -> Vec<String> {
    let proxy_key = raw.proxy.as_ref().and_then(|p| p.idle_timeout.as_ref());
    let mut out: Vec<String> = Vec::new();
    for (l, r) in listeners.iter().zip(&raw.listener) {
        if l.protocol != Protocol::Imap || l.idle_timeout >= IDLE_WARNING_BELOW {
            continue;
        }
        let (span, key) = match (&r.idle_timeout, proxy_key) {
            (Some(s), _) => (s.span(), "listener.idle_timeout"),
            (None, Some(s)) => (s.span(), "proxy.idle_timeout"),
            (None, None) => continue,
        };
        let w = format!(
            "{}:{}: `{key}`: {} is under 31 minutes: IMAP IDLE clients (which re-issue IDLE every 29 minutes) may be cut off",
            cx.file,
            cx.line(span),
            humantime::format_duration(l.idle_timeout)
        );
        if !out.contains(&w) {
            out.push(w);
        }
    }
    out
}
