//! The `[proxy]` table: state directory, timers and `notify_command`, with the limit
//! keys ([`limits`](super::limits)) and the admin listener ([`admin`](super::admin))
//! resolved by their own modules.

use super::*;

/// `[proxy] watch_config` when absent.
const DEFAULT_WATCH_CONFIG: std::time::Duration = std::time::Duration::from_secs(2);

/// Resolves `[proxy]` (an absent table resolves like an empty one); admin warnings
/// are appended to `warnings`.
pub(super) fn resolve(
    cx: &Ctx,
    p: &raw::Proxy,
    warnings: &mut Vec<String>,
) -> Result<Proxy, ConfigError> {
    let lim = limits::proxy(cx, p)?;
    let admin = admin::resolve(cx, p, warnings)?;
    let state_dir = match &p.state_dir {
        Some(s) if s.get_ref().is_empty() => {
            return Err(cx.invalid(s, "proxy.state_dir", "must not be empty"));
        }
        Some(s) => cx.path(s.get_ref()),
        None => cx.path("state"),
    };
    Ok(Proxy {
        state_dir,
        refresh_margin: cx.duration(
            &p.refresh_margin,
            "proxy.refresh_margin",
            Duration::from_secs(90),
        )?,
        auth_failure_delay: cx.duration(
            &p.auth_failure_delay,
            "proxy.auth_failure_delay",
            Duration::from_secs(2),
        )?,
        auth_failure_max_delay: cx.duration(
            &p.auth_failure_max_delay,
            "proxy.auth_failure_max_delay",
            Duration::from_secs(15),
        )?,
        preauth_timeout: lim.preauth_timeout,
        idle_timeout: lim.idle_timeout,
        limits: lim.limits,
        max_connections: lim.max_connections,
        max_connections_per_source: lim.max_connections_per_source,
        upstream_timeout: cx.duration(
            &p.upstream_timeout,
            "proxy.upstream_timeout",
            Duration::from_secs(10),
        )?,
        notify_command: match &p.notify_command {
            Some(c) if c.get_ref().trim().is_empty() => {
                return Err(cx.invalid(c, "proxy.notify_command", "must not be empty"));
            }
            Some(c) => Some(cx.path(c.get_ref())),
            None => None,
        },
        refresh_token_warning: cx.duration(
            &p.refresh_token_warning,
            "proxy.refresh_token_warning",
            crate::oauth::DEFAULT_REFRESH_TOKEN_WARNING,
        )?,
        admin,
        drain_timeout: cx.duration(
            &p.drain_timeout,
            "proxy.drain_timeout",
            admin::DEFAULT_DRAIN_TIMEOUT,
        )?,
        watch_config: Some(cx.duration(
            &p.watch_config,
            "proxy.watch_config",
            DEFAULT_WATCH_CONFIG,
        )?)
        .filter(|d| !d.is_zero()),
    })
}
