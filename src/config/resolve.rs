//! Validation: raw TOML model → resolved [`Config`].

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use toml::Spanned;

use super::raw;
use super::*;

mod admin;
mod env;
mod flow;
mod limits;

/// Error construction with the file text at hand, so spans become line numbers.
struct Ctx<'a> {
    text: &'a str,
    file: String,
    base: PathBuf,
}

impl Ctx<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }

    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line(span),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn invalid(&self, v: &Spanned<impl Sized>, key: &str, msg: impl Into<String>) -> ConfigError {
        self.err(v.span(), key, msg)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn duration(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => humantime::parse_duration(s.get_ref())
                .map_err(|e| self.invalid(s, key, format!("not a duration like \"90s\": {e}"))),
        }
    }
}

/// `[proxy] watch_config` when absent.
const DEFAULT_WATCH_CONFIG: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) fn resolve(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let mut raw: raw::File = toml::from_str(text).map_err(|e| ConfigError::Parse {
        file: file.clone(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = std::path::absolute(&base).unwrap_or(base);
    let cx = Ctx { text, file, base };
    env::apply(&cx, &mut raw)?;

    let raw_proxy = raw.proxy.as_ref();
    let mut admin_warnings = Vec::new();
    let proxy = resolve_proxy(
        &cx,
        raw_proxy.unwrap_or(&raw::Proxy::default()),
        &mut admin_warnings,
    )?;
    let listeners = raw
        .listener
        .iter()
        .map(|l| resolve_listener(&cx, l, &proxy))
        .collect::<Result<Vec<_>, _>>()?;
    let mut accounts: Vec<Account> = Vec::new();
    for a in &raw.account {
        let acc = resolve_account(&cx, a)?;
        if accounts.iter().any(|o| o.username == acc.username) {
            return Err(cx.invalid(&a.username, "account.username", "duplicate account"));
        }
        accounts.push(acc);
    }
    for (i, l) in listeners.iter().enumerate() {
        if l.bind.port() != 0 && listeners[..i].iter().any(|o| o.bind == l.bind) {
            let span = raw.listener[i].bind.as_ref().map_or(0..0, |b| b.span());
            return Err(cx.err(span, "listener.bind", "address used by two listeners"));
        }
    }
    let mut warnings = limits::warnings(&cx, &raw, &listeners);
    warnings.extend(admin_warnings);
    Ok(Config {
        file: path.to_path_buf(),
        proxy,
        listeners,
        accounts,
        warnings,
    })
}

fn resolve_proxy(
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

fn one_of<'s>(
    cx: &Ctx,
    v: &'s Spanned<String>,
    key: &str,
    allowed: &[&'s str],
) -> Result<&'s str, ConfigError> {
    let s = v.get_ref().as_str();
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(cx.invalid(
            v,
            key,
            format!("expected one of {}, found \"{s}\"", allowed.join(" | ")),
        ))
    }
}

fn resolve_listener(cx: &Ctx, l: &raw::Listener, proxy: &Proxy) -> Result<Listener, ConfigError> {
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

/// "host", "host:port", "[v6]", "[v6]:port".
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '/') {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some((h.to_string(), None)),
            p => Some((h.to_string(), Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.contains(':') => {
            Some((h.to_string(), Some(p.parse().ok()?)))
        }
        Some(_) => None,
        None => Some((s.to_string(), None)),
    }
}

pub(crate) fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

const GOOGLE_AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/auth";
const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
/// RFC 7009 token revocation (Microsoft has no such endpoint).
const GOOGLE_REVOKE: &str = "https://oauth2.googleapis.com/revoke";
const GOOGLE_SCOPES: &[&str] = &["https://mail.google.com/"];
const MICROSOFT_SCOPES: &[&str] = &[
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/POP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
];

fn resolve_account(cx: &Ctx, a: &raw::Account) -> Result<Account, ConfigError> {
    let username = a.username.get_ref().trim().to_string();
    if username.is_empty() || username.chars().any(|c| c.is_control()) {
        return Err(cx.invalid(
            &a.username,
            "account.username",
            "must be a non-empty name without control characters",
        ));
    }
    let template = template_domain(cx, &a.username)?;
    let password_hash = match (&template, &a.password_hash, &a.password_file) {
        (None, Some(h), None) => {
            crate::accounts::check_phc(h.get_ref()).map_err(|e| {
                cx.invalid(
                    h,
                    "account.password_hash",
                    format!("{e}; create one with `oauth-mail-proxy hash-password`"),
                )
            })?;
            h.get_ref().clone()
        }
        (None, None, _) => {
            return Err(cx.invalid(
                &a.username,
                "account.password_hash",
                "required; create one with `oauth-mail-proxy hash-password`",
            ));
        }
        (None, Some(_), Some(f)) => {
            return Err(cx.invalid(
                f,
                "account.password_file",
                "only for template accounts (username = \"*@domain\"); this account has `password_hash`",
            ));
        }
        (Some(_), Some(h), _) => {
            return Err(cx.invalid(
                h,
                "account.password_hash",
                "not allowed on a template account: its users' hashes go in `password_file`",
            ));
        }
        (Some(_), None, None) => {
            return Err(cx.invalid(
                &a.username,
                "account.password_file",
                "required for a template account (username = \"*@domain\")",
            ));
        }
        (Some(_), None, Some(_)) => String::new(),
    };
    let template = match (template, &a.password_file) {
        (Some(domain), Some(f)) => Some(password_file(cx, f, domain)?),
        _ => None,
    };
    if let (Some(_), Some(u)) = (&template, &a.upstream_username) {
        return Err(cx.invalid(
            u,
            "account.upstream_username",
            "not allowed on a template account: every user logs in upstream as itself (one upstream_username would let many users act as one mailbox)",
        ));
    }
    let service_account_key = a.service_account_key.as_ref().map(|k| cx.path(k.get_ref()));
    let provider = match &a.provider {
        None => Provider::Custom,
        Some(p) => match one_of(
            cx,
            p,
            "account.provider",
            &["google", "microsoft", "custom"],
        )? {
            "google" => Provider::Google,
            "microsoft" => Provider::Microsoft,
            _ => Provider::Custom,
        },
    };
    if let (Some(t), false) = (&a.tenant, provider == Provider::Microsoft) {
        return Err(cx.invalid(
            t,
            "account.tenant",
            "only used with provider = \"microsoft\"",
        ));
    }
    let tenant = a.tenant.as_ref().map_or("common", |t| t.get_ref().as_str());
    let (preset_auth, preset_token, preset_scopes): (Option<String>, Option<String>, &[&str]) =
        match provider {
            Provider::Google => (
                Some(GOOGLE_AUTHORIZE.into()),
                Some(GOOGLE_TOKEN.into()),
                GOOGLE_SCOPES,
            ),
            Provider::Microsoft => (
                Some(format!(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
                )),
                Some(format!(
                    "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
                )),
                MICROSOFT_SCOPES,
            ),
            Provider::Custom => (None, None, &[]),
        };
    let flow = flow::parse(cx, a)?;
    let authorize_url = oauth_url(
        cx,
        &a.authorize_url,
        preset_auth.or_else(|| flow::authorize_placeholder(flow, a)),
        "account.authorize_url",
        &a.username,
    )?;
    let token_url = oauth_url(
        cx,
        &a.token_url,
        preset_token,
        "account.token_url",
        &a.username,
    )?;
    let mut scopes = match &a.scopes {
        Some(s) => s.get_ref().clone(),
        None => preset_scopes.iter().map(|s| s.to_string()).collect(),
    };
    let keys = flow::resolve(cx, a, flow, provider, tenant, &token_url, &mut scopes)?;
    if a.client_id.get_ref().is_empty() {
        return Err(cx.invalid(&a.client_id, "account.client_id", "must not be empty"));
    }
    let mechanism = match &a.mechanism {
        None => Mechanism::Xoauth2,
        Some(m) => match one_of(cx, m, "account.mechanism", &["xoauth2", "oauthbearer"])? {
            "xoauth2" => Mechanism::Xoauth2,
            _ => Mechanism::Oauthbearer,
        },
    };
    let upstream_username = match &a.upstream_username {
        Some(u) if u.get_ref().trim().is_empty() => {
            return Err(cx.invalid(u, "account.upstream_username", "must not be empty"));
        }
        Some(u) => u.get_ref().trim().to_string(),
        None => username.clone(),
    };
    let encrypt_with = match &a.encrypt_with {
        None => EncryptWith::StateKey,
        Some(e) => match one_of(
            cx,
            e,
            "account.encrypt_with",
            &["state-key", "client-password"],
        )? {
            "state-key" => EncryptWith::StateKey,
            _ if !flow.is_interactive() => {
                return Err(cx.invalid(
                    e,
                    "account.encrypt_with",
                    "\"client-password\" needs a user flow (authorization_code or device_code): the proxy fetches app-only tokens by itself, without a client password",
                ));
            }
            _ => EncryptWith::ClientPassword,
        },
    };
    Ok(Account {
        username,
        password_hash,
        encrypt_with,
        template,
        service_account_key,
        upstream_username,
        mechanism,
        oauth: OAuthClient {
            provider,
            client_id: a.client_id.get_ref().clone(),
            client_secret: a
                .client_secret
                .as_ref()
                .map(|s| s.get_ref().clone())
                .filter(|s| !s.is_empty())
                .map(SecretString::from),
            authorize_url,
            token_url,
            scopes,
            flow,
            device_authorization_url: keys.device_authorization_url,
            refresh_url: keys.refresh_url,
            token_scopes: keys.token_scopes,
            login_hint: keys.login_hint,
            prompt: keys.prompt,
            redirect_uri: keys.redirect_uri,
            revocation_url: match (&a.revocation_url, provider) {
                (None, Provider::Google) => Some(GOOGLE_REVOKE.parse().expect("valid preset")),
                (None, _) => None,
                (Some(_), _) => Some(oauth_url(
                    cx,
                    &a.revocation_url,
                    None,
                    "account.revocation_url",
                    &a.username,
                )?),
            },
        },
    })
}

/// `Some(domain)` for a template user name `*@domain`, `None` for a plain one; any
/// other use of `*` is refused.
fn template_domain(cx: &Ctx, v: &Spanned<String>) -> Result<Option<String>, ConfigError> {
    let name = v.get_ref().trim();
    if !name.contains('*') {
        return Ok(None);
    }
    match name.strip_prefix("*@") {
        Some(d) if valid_domain(d) => Ok(Some(d.to_ascii_lowercase())),
        _ => Err(cx.invalid(
            v,
            "account.username",
            "a template must be \"*@domain\" (the only wildcard form), e.g. \"*@example.com\"",
        )),
    }
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && !d.starts_with('.')
        && !d.ends_with('.')
        && !d.contains("..")
        && d.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Largest password file accepted.
const MAX_PASSWORD_FILE: u64 = 16 << 20;

/// Reads and validates a template's password file: `user@domain:$argon2id$...` lines,
/// blank lines and `#` comments; errors name the password file and its line.
fn password_file(cx: &Ctx, f: &Spanned<String>, domain: String) -> Result<Template, ConfigError> {
    let path = cx.path(f.get_ref());
    let file = path.display().to_string();
    let read = std::fs::metadata(&path).and_then(|m| {
        if m.len() > MAX_PASSWORD_FILE {
            Err(std::io::Error::other("file too large"))
        } else {
            std::fs::read_to_string(&path)
        }
    });
    let text = read.map_err(|e| {
        cx.invalid(
            f,
            "account.password_file",
            format!("cannot read {file}: {e}"),
        )
    })?;
    let from = format!(
        " (password_file of the account at {}:{})",
        cx.file,
        cx.line(f.span())
    );
    let bad = |line: usize, message: String| ConfigError::Invalid {
        file: file.clone(),
        line,
        key: "password_file".into(),
        message: message + &from,
    };
    let mut users = std::collections::BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(bad(n, "expected `user@domain:$argon2id$...`".into()));
        };
        let user = user.trim();
        let ok_domain = user
            .rsplit_once('@')
            .is_some_and(|(local, d)| !local.is_empty() && d.eq_ignore_ascii_case(&domain));
        if !ok_domain
            || user.contains('*')
            || user.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                n,
                format!("user name must be an address `name@{domain}` without spaces or `*`"),
            ));
        }
        crate::accounts::check_phc(hash.trim()).map_err(|e| {
            bad(
                n,
                format!("{user}: {e}; create one with `oauth-mail-proxy hash-password`"),
            )
        })?;
        if users
            .insert(user.to_string(), hash.trim().to_string())
            .is_some()
        {
            return Err(bad(n, format!("duplicate user {user}")));
        }
    }
    Ok(Template {
        domain,
        password_file: path,
        users: std::sync::Arc::new(users),
    })
}

fn oauth_url(
    cx: &Ctx,
    v: &Option<Spanned<String>>,
    preset: Option<String>,
    key: &str,
    account: &Spanned<String>,
) -> Result<Url, ConfigError> {
    let (text, span) = match (v, preset) {
        (Some(s), _) => (s.get_ref().clone(), s.span()),
        (None, Some(p)) => (p, account.span()),
        (None, None) => {
            return Err(cx.invalid(account, key, "required for provider = \"custom\""));
        }
    };
    let url =
        Url::parse(&text).map_err(|e| cx.err(span.clone(), key, format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if url.host_str().is_some_and(is_loopback_host_url) => Ok(url),
        "http" => Err(cx.err(
            span,
            key,
            "http:// is only allowed for a loopback host; use https://",
        )),
        s => Err(cx.err(span, key, format!("unsupported scheme \"{s}\""))),
    }
}

fn is_loopback_host_url(h: &str) -> bool {
    is_loopback_host(h.trim_start_matches('[').trim_end_matches(']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let t = |s: &str| split_host_port(s);
        assert_eq!(
            t("imap.gmail.com:993"),
            Some(("imap.gmail.com".into(), Some(993)))
        );
        assert_eq!(t("imap.gmail.com"), Some(("imap.gmail.com".into(), None)));
        assert_eq!(t("[::1]:143"), Some(("::1".into(), Some(143))));
        assert_eq!(t("[::1]"), Some(("::1".into(), None)));
        assert_eq!(t("::1"), None);
        assert_eq!(t("host:notaport"), None);
        assert_eq!(t(""), None);
        assert_eq!(t("a b:1"), None);
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("127.1.2.3"));
        assert!(is_loopback_host("::1"));
        assert!(is_loopback_host("LOCALHOST"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("example.com"));
        assert!(is_loopback_host_url("[::1]"));
    }
}
