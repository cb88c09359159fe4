//! Validation: raw TOML model → resolved [`Config`].
//!
//! This file holds [`resolve`], the entry point that checks what spans several tables
//! (duplicate accounts, a bind address used twice), and [`Ctx`], the error helpers
//! every table's module uses. The tables are resolved in the submodules: [`proxy`],
//! [`limits`] and [`admin`] for `[proxy]`, [`listener`] and [`host`] for
//! `[[listener]]`, [`account`], [`flow`] and [`password_file`] for `[[account]]`;
//! [`env`] substitutes `*_env` secrets before any of them runs.

use std::net::SocketAddr;
use std::ops::Range;

use toml::Spanned;

use super::raw;
use super::*;

mod account;
mod admin;
mod env;
mod flow;
mod host;
mod limits;
mod listener;
mod password_file;
mod proxy;

use account::oauth_url;
use host::{is_loopback_host, is_loopback_host_url, split_host_port};

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
    let proxy = proxy::resolve(
        &cx,
        raw_proxy.unwrap_or(&raw::Proxy::default()),
        &mut admin_warnings,
    )?;
    let listeners = raw
        .listener
        .iter()
        .map(|l| listener::resolve(&cx, l, &proxy))
        .collect::<Result<Vec<_>, _>>()?;
    let mut accounts: Vec<Account> = Vec::new();
    for a in &raw.account {
        let acc = account::resolve(&cx, a)?;
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

/// The value of a key that takes one of a few words, or an error listing them.
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
