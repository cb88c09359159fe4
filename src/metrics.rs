//! The process's counters and gauges, rendered in the Prometheus text exposition
//! format (version 0.0.4) for the admin listener's `/metrics`.
//!
//! Bumping a metric is one relaxed atomic add: fixed label sets (login failure and
//! pre-auth rejection reasons) are arrays indexed by an enum, and per-listener
//! metrics live in a [`ListenerMetrics`] handle a listener fetches once
//! ([`Metrics::listener`]) and keeps. Per-account token gauges are computed at render
//! time from an [`AccountGauge`] list (see [`Metrics::set_account_source`]).
//!
//! Hand-written rather than `prometheus-client`: that crate emits OpenMetrics (with
//! `_total` renaming and `# EOF`) and needs a custom collector for render-time gauges;
//! this small fixed set is simpler to write out directly.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};

use dashmap::DashMap;

/// Every metric name starts with this.
pub const PREFIX: &str = "oauth_mail_proxy";

/// Why a client login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown user or wrong local password.
    BadCredentials,
    /// Refused while the source or user was being throttled.
    Throttled,
    /// Upstream refused the OAuth login.
    UpstreamRejected,
    /// No access token could be had (refresh failed for a temporary reason).
    TokenUnavailable,
    /// The account needs `oauth-mail-proxy login`.
    NeedsLogin,
}

impl LoginFailure {
    pub const ALL: [LoginFailure; 5] = [
        LoginFailure::BadCredentials,
        LoginFailure::Throttled,
        LoginFailure::UpstreamRejected,
        LoginFailure::TokenUnavailable,
        LoginFailure::NeedsLogin,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LoginFailure::BadCredentials => "bad_credentials",
            LoginFailure::Throttled => "throttled",
            LoginFailure::UpstreamRejected => "upstream_rejected",
            LoginFailure::TokenUnavailable => "token_unavailable",
            LoginFailure::NeedsLogin => "needs_login",
        }
    }
}

/// Why a connection was dropped before login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreauthReject {
    LineTooLong,
    LiteralTooLong,
    TooManyErrors,
    TooManyFailures,
    Timeout,
    /// Refused at accept: too many connections.
    Busy,
}

impl PreauthReject {
    pub const ALL: [PreauthReject; 6] = [
        PreauthReject::LineTooLong,
        PreauthReject::LiteralTooLong,
        PreauthReject::TooManyErrors,
        PreauthReject::TooManyFailures,
        PreauthReject::Timeout,
        PreauthReject::Busy,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PreauthReject::LineTooLong => "line_too_long",
            PreauthReject::LiteralTooLong => "literal_too_long",
            PreauthReject::TooManyErrors => "too_many_errors",
            PreauthReject::TooManyFailures => "too_many_failures",
            PreauthReject::Timeout => "timeout",
            PreauthReject::Busy => "busy",
        }
    }
}

/// One listener's connection and traffic counters. Fetch once per listener with
/// [`Metrics::listener`] and keep the `Arc`.
#[derive(Debug, Default)]
pub struct ListenerMetrics {
    open: AtomicI64,
    total: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl ListenerMetrics {
    /// Counts an accepted connection; it stays open until the guard is dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGuard {
        self.total.fetch_add(1, Relaxed);
        self.open.fetch_add(1, Relaxed);
        ConnectionGuard(Arc::clone(self))
    }

    /// Adds spliced bytes: `up` client → upstream, `down` upstream → client.
    pub fn add_bytes(&self, up: u64, down: u64) {
        self.bytes_up.fetch_add(up, Relaxed);
        self.bytes_down.fetch_add(down, Relaxed);
    }

    pub fn open(&self) -> i64 {
        self.open.load(Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
}

/// An open connection of a listener; dropping it closes it in the gauge.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<ListenerMetrics>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Relaxed);
    }
}

/// What the per-account gauges show of one account (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountGauge {
    pub account: String,
    /// Unix seconds when its access token expires; `None`: unknown or none stored.
    pub expires_at: Option<u64>,
    pub needs_login: bool,
}

/// Produces the account gauges at render time (may read the token store: call
/// [`Metrics::render`] off the async workers).
pub type AccountSource = Arc<dyn Fn() -> Vec<AccountGauge> + Send + Sync>;

/// All of the process's metrics. Share one `Arc<Metrics>`.
#[derive(Default)]
pub struct Metrics {
    listeners: DashMap<String, Arc<ListenerMetrics>>,
    logins_ok: AtomicU64,
    login_failures: [AtomicU64; LoginFailure::ALL.len()],
    upstream_auth_failures: AtomicU64,
    refreshes_ok: AtomicU64,
    refreshes_failed: AtomicU64,
    preauth_rejections: [AtomicU64; PreauthReject::ALL.len()],
    accounts: RwLock<Option<AccountSource>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters of the listener labelled `name` (e.g. `"imap 127.0.0.1:1143"`),
    /// created at zero on first use.
    pub fn listener(&self, name: &str) -> Arc<ListenerMetrics> {
        if let Some(l) = self.listeners.get(name) {
            return Arc::clone(&l);
        }
        Arc::clone(&self.listeners.entry(name.to_owned()).or_default())
    }

    pub fn login_ok(&self) {
        self.logins_ok.fetch_add(1, Relaxed);
    }

    pub fn login_failed(&self, reason: LoginFailure) {
        self.login_failures[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn upstream_auth_failed(&self) {
        self.upstream_auth_failures.fetch_add(1, Relaxed);
    }

    pub fn refresh(&self, ok: bool) {
        match ok {
            true => &self.refreshes_ok,
            false => &self.refreshes_failed,
        }
        .fetch_add(1, Relaxed);
    }

    pub fn preauth_rejected(&self, reason: PreauthReject) {
        self.preauth_rejections[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn logins_ok(&self) -> u64 {
        self.logins_ok.load(Relaxed)
    }

    pub fn login_failures(&self, reason: LoginFailure) -> u64 {
        self.login_failures[reason as usize].load(Relaxed)
    }

    /// Where [`render`](Self::render) gets the per-account gauges from.
    pub fn set_account_source(&self, source: AccountSource) {
        *self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    /// The text exposition, with the account gauges of the account source (none if
    /// no source is set).
    pub fn render(&self) -> String {
        let source = self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let accounts = source.map(|f| f()).unwrap_or_default();
        self.render_with_accounts(&accounts, crate::oauth::outcome::unix_now())
    }

    /// The text exposition with these account gauges, as of `now` (unix seconds).
    pub fn render_with_accounts(&self, accounts: &[AccountGauge], now: u64) -> String {
        let mut out = Text::default();
        let mut listeners: Vec<(String, Arc<ListenerMetrics>)> = self
            .listeners
            .iter()
            .map(|e| (e.key().clone(), Arc::clone(e.value())))
            .collect();
        listeners.sort_by(|a, b| a.0.cmp(&b.0));

        out.head("connections_open", "gauge", "Client connections open now.");
        for (name, l) in &listeners {
            out.sample("connections_open", &[("listener", name)], l.open());
        }
        out.head(
            "connections_total",
            "counter",
            "Client connections accepted.",
        );
        for (name, l) in &listeners {
            out.sample("connections_total", &[("listener", name)], l.total());
        }
        out.head(
            "spliced_bytes_total",
            "counter",
            "Bytes copied after login, by direction.",
        );
        for (name, l) in &listeners {
            for (dir, n) in [
                ("client_to_upstream", &l.bytes_up),
                ("upstream_to_client", &l.bytes_down),
            ] {
                let labels = [("listener", name.as_str()), ("direction", dir)];
                out.sample("spliced_bytes_total", &labels, n.load(Relaxed));
            }
        }
        out.head(
            "logins_ok_total",
            "counter",
            "Client logins that reached the upstream mailbox.",
        );
        out.sample("logins_ok_total", &[], self.logins_ok());
        out.head(
            "logins_failed_total",
            "counter",
            "Client logins refused, by reason.",
        );
        for r in LoginFailure::ALL {
            out.sample(
                "logins_failed_total",
                &[("reason", r.label())],
                self.login_failures(r),
            );
        }
        out.head(
            "upstream_auth_failures_total",
            "counter",
            "OAuth logins the upstream server refused.",
        );
        let n = self.upstream_auth_failures.load(Relaxed);
        out.sample("upstream_auth_failures_total", &[], n);
        out.head(
            "token_refreshes_total",
            "counter",
            "Access token refreshes, by result.",
        );
        for (result, n) in [
            ("ok", &self.refreshes_ok),
            ("failed", &self.refreshes_failed),
        ] {
            out.sample(
                "token_refreshes_total",
                &[("result", result)],
                n.load(Relaxed),
            );
        }
        out.head(
            "preauth_rejections_total",
            "counter",
            "Connections dropped before login, by reason.",
        );
        for r in PreauthReject::ALL {
            let n = self.preauth_rejections[r as usize].load(Relaxed);
            out.sample("preauth_rejections_total", &[("reason", r.label())], n);
        }
        out.head(
            "token_expiry_seconds",
            "gauge",
            "Seconds until the account's access token expires (negative: expired).",
        );
        for a in accounts {
            if let Some(at) = a.expires_at {
                let left = i64::try_from(at).unwrap_or(i64::MAX) - i64::try_from(now).unwrap_or(0);
                out.sample("token_expiry_seconds", &[("account", &a.account)], left);
            }
        }
        out.head(
            "account_needs_login",
            "gauge",
            "1 if the account needs an interactive login.",
        );
        for a in accounts {
            out.sample(
                "account_needs_login",
                &[("account", &a.account)],
                u8::from(a.needs_login),
            );
        }
        out.head(
            "accounts_needing_login",
            "gauge",
            "Accounts that need an interactive login.",
        );
        let n = accounts.iter().filter(|a| a.needs_login).count();
        out.sample("accounts_needing_login", &[], n);
        out.0
    }
}

/// Builds the exposition text.
#[derive(Default)]
struct Text(String);

impl Text {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {PREFIX}_{name} {}", escape_help(help));
        let _ = writeln!(self.0, "# TYPE {PREFIX}_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let _ = write!(self.0, "{PREFIX}_{name}");
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// A label value: backslash, double quote and newline escaped.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text: backslash and newline escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests;
