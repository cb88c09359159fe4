//! A `[[listener]]`: protocol, bind address, downstream TLS and certificate, and the
//! upstream servers with their TLS mode and default ports.

use super::*;

/// Resolves one `[[listener]]`; limits it does not set come from `proxy`.
pub(super) fn resolve(cx: &Ctx, l: &raw::Listener, proxy: &Proxy) -> Result<Listener, ConfigError> {
    let protocol = match one_of(
        cx,
        &l.protocol,
        "listener.protocol",
        &["imap", "pop3", "smtp"],
    )? {
        "imap" => Protocol::Imap,
        "pop3" => Protocol::Pop3,
        _ => Protocol::Smtp,
    };
    let bind = match &l.bind {
        None => SocketAddr::from(([127, 0, 0, 1], default_bind_port(protocol))),
        Some(b) => b.get_ref().parse().map_err(|_| {
            cx.invalid(
                b,
                "listener.bind",
                "expected IP:PORT, e.g. \"127.0.0.1:1143\" or \"[::1]:1143\"",
            )
        })?,
    };
    let tls = match &l.tls {
        None => ListenTls::None,
        Some(t) => match one_of(cx, t, "listener.tls", &["none", "starttls", "implicit"])? {
            "none" => ListenTls::None,
            "starttls" => ListenTls::StartTls,
            _ => ListenTls::Implicit,
        },
    };
    let cert = match (&l.cert, &l.key) {
        (Some(c), Some(k)) => Some((cx.path(c.get_ref()), cx.path(k.get_ref()))),
        (None, None) => None,
        (Some(c), None) => {
            return Err(cx.invalid(c, "listener.cert", "`key` must be set with `cert`"));
        }
        (None, Some(k)) => {
            return Err(cx.invalid(k, "listener.key", "`cert` must be set with `key`"));
        }
    };
    let upstream_tls = match &l.upstream_tls {
        None => UpstreamTls::Implicit,
        Some(t) => match one_of(
            cx,
            t,
            "listener.upstream_tls",
            &["implicit", "starttls", "none"],
        )? {
            "implicit" => UpstreamTls::Implicit,
            "starttls" => UpstreamTls::StartTls,
            _ => UpstreamTls::None,
        },
    };
    let items = l.upstream.get_ref().items();
    if items.is_empty() {
        return Err(cx.invalid(
            &l.upstream,
            "listener.upstream",
            "needs at least one HOST[:PORT]",
        ));
    }
    let mut servers = Vec::new();
    for item in items {
        let (host, port) = split_host_port(item).ok_or_else(|| {
            cx.invalid(
                &l.upstream,
                "listener.upstream",
                format!("expected HOST[:PORT], found \"{item}\""),
            )
        })?;
        if upstream_tls == UpstreamTls::None && !is_loopback_host(&host) {
            let span = l
                .upstream_tls
                .as_ref()
                .map_or(l.upstream.span(), |t| t.span());
            return Err(cx.err(
                span,
                "listener.upstream_tls",
                format!("\"none\" is only allowed for a loopback upstream, not \"{host}\""),
            ));
        }
        let port = port.unwrap_or(default_port(protocol, upstream_tls));
        servers.push(ServerAddr { host, port });
    }
    let (limits, preauth_timeout, idle_timeout) = limits::listener(cx, l, proxy)?;
    Ok(Listener {
        limits,
        preauth_timeout,
        idle_timeout,
        protocol,
        bind,
        tls,
        cert,
        upstream: Upstream {
            servers,
            tls: upstream_tls,
            ca: l.upstream_ca.as_ref().map(|c| cx.path(c.get_ref())),
        },
    })
}

/// Default local port when `bind` is not given.
fn default_bind_port(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Imap => 1143,
        Protocol::Pop3 => 1110,
        Protocol::Smtp => 1587,
    }
}

/// Default upstream port when `upstream` has none.
pub fn default_port(protocol: Protocol, tls: UpstreamTls) -> u16 {
    let implicit = tls == UpstreamTls::Implicit;
    match (protocol, implicit) {
        (Protocol::Imap, true) => 993,
        (Protocol::Imap, false) => 143,
        (Protocol::Pop3, true) => 995,
        (Protocol::Pop3, false) => 110,
        (Protocol::Smtp, true) => 465,
        (Protocol::Smtp, false) => 587,
    }
}
