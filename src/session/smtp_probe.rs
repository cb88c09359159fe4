//! The upstream's SMTP extensions, learned by a probe connection (greeting, EHLO,
//! STARTTLS, EHLO, QUIT: no credentials) and cached per listener, so the proxy can
//! answer a client's EHLO with the server's SIZE, 8BITMIME, PIPELINING, ... without
//! opening an upstream connection for every client before it has authenticated.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::Protocol;
use crate::connector;
use crate::driver::Upgrade;
use crate::proto::smtp::{ProbeEvent, SmtpProbe};
use crate::proto::{Limits, UpstreamTls};
use crate::trace::{Role, Traced, Tracer};

use super::ListenerCtx;

/// How long a successful probe's answer is reused.
pub const PROBE_TTL: Duration = Duration::from_secs(3600);
/// How long to wait before probing again after a failed probe.
pub const PROBE_RETRY: Duration = Duration::from_secs(60);

/// Offered when the upstream cannot be probed: what every submission server has.
const FALLBACK: &[&str] = &["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"];

/// Cached probe result of one listener.
#[derive(Default)]
pub struct ProbeCache {
    state: tokio::sync::Mutex<Option<(Instant, Vec<String>)>>,
}

/// The upstream's extensions for `lc`, probing when the cache is empty or stale.
/// Concurrent callers wait for one probe.
pub async fn extensions(lc: &ListenerCtx, limits: Limits) -> Vec<String> {
    let mut state = lc.smtp_probe.state.lock().await;
    if let Some((until, ext)) = state.as_ref()
        && Instant::now() < *until
    {
        return ext.clone();
    }
    let (ttl, ext) = match probe(lc, limits).await {
        Ok(ext) => {
            info!(upstream = %lc.upstream.servers[0], extensions = ext.join(", "), "learned upstream SMTP extensions");
            (PROBE_TTL, ext)
        }
        Err(e) => {
            warn!(upstream = %lc.upstream.servers[0], "cannot probe upstream SMTP extensions, offering a minimal set: {e}");
            (
                PROBE_RETRY,
                FALLBACK.iter().map(|s| s.to_string()).collect(),
            )
        }
    };
    *state = Some((Instant::now() + ttl, ext.clone()));
    ext
}

async fn probe(lc: &ListenerCtx, limits: Limits) -> Result<Vec<String>, String> {
    let target = &lc.upstream;
    let (mut stream, server) = connector::connect(target)
        .await
        .map_err(|e| e.to_string())?;
    let upgrade = match target.tls {
        UpstreamTls::StartTls => Upgrade::Client(
            target.client_config.clone(),
            connector::server_name(server).map_err(|e| e.to_string())?,
        ),
        _ => Upgrade::Unavailable,
    };
    let mut machine = SmtpProbe::new(target.tls, limits, "localhost");
    let mut tracer = Tracer::start(Protocol::Smtp, Role::Client, || {
        format!("upstream {server} (extension probe)")
    });
    let traced = Traced::new(&mut machine, tracer.as_mut());
    match super::upstream::drive_stepwise(&mut stream, traced, &upgrade, target.timeout).await {
        Ok(ProbeEvent::Extensions(ext)) => Ok(ext),
        Err((step, e)) => Err(super::upstream::describe_step_failure(
            server,
            step,
            &e,
            target.timeout,
        )),
    }
}
