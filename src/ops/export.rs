//! `export` / `import` / `import-token`.
//!
//! An export is a passphrase-sealed file (`export/sealed.rs`: the format, Argon2id
//! and XChaCha20-Poly1305) around a JSON [`Payload`] (`export/payload.rs`: the
//! accounts as TOML blocks and their token records). This file holds the commands:
//! building and writing an export, reading one back, importing its token records,
//! and storing a single refresh token.

mod payload;
mod sealed;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::OpsError;
use crate::config::{Account, Config};
use crate::oauth::{TokenRecord, TokenStore};

pub use payload::{ExportedAccount, ExportedToken, Payload, account_toml};
use payload::{PayloadOut, TokenOut};
pub use sealed::{open, seal};

/// Largest export file read.
const MAX_FILE: u64 = 64 << 20;

/// Builds the export of every configured account and every stored token record.
pub fn export_bytes(
    config: &Config,
    store: &TokenStore,
    passphrase: &SecretString,
) -> Result<(Vec<u8>, Vec<String>, usize), OpsError> {
    let accounts: Vec<ExportedAccount> = config
        .accounts
        .iter()
        .map(|a| ExportedAccount {
            username: a.username.clone(),
            toml: account_toml(a),
        })
        .collect();
    let mut records = Vec::new();
    for name in store.list()? {
        if let Some(r) = store.load(&name)? {
            records.push(r);
        }
    }
    let tokens = records
        .iter()
        .map(|r| TokenOut {
            account: &r.account,
            access_token: r.access_token.expose_secret(),
            refresh_token: r.refresh_token.as_ref().map(|t| t.expose_secret()),
            expires_at: r.expires_at,
            scopes: &r.scopes,
            obtained_at: r.obtained_at,
            last_refresh: r.last_refresh,
            needs_login: r.needs_login.as_deref(),
            refresh_expires_at: r.refresh_expires_at,
        })
        .collect();
    let payload = PayloadOut {
        version: 1,
        created_at: crate::oauth::outcome::unix_now(),
        accounts: &accounts,
        tokens,
    };
    let json = Zeroizing::new(
        serde_json::to_vec(&payload).map_err(|e| OpsError::Export(format!("serialize: {e}")))?,
    );
    let sealed = seal(passphrase, &json)?;
    Ok((
        sealed,
        accounts.into_iter().map(|a| a.username).collect(),
        records.len(),
    ))
}

/// Writes the export to `file` (mode 0600) and says what it holds.
pub fn export(
    config: &Config,
    store: &TokenStore,
    file: &std::path::Path,
    passphrase: &SecretString,
) -> Result<String, OpsError> {
    let (bytes, accounts, tokens) = export_bytes(config, store, passphrase)?;
    crate::private_file::write_private_file(file, &bytes)
        .map_err(|e| OpsError::Io(format!("{}: cannot write: {e}", file.display())))?;
    Ok(format!(
        "exported {} account(s) ({}) and {tokens} token record(s) to {}",
        accounts.len(),
        accounts.join(", "),
        file.display()
    ))
}

/// Reads and decrypts an export file.
pub fn read(file: &std::path::Path, passphrase: &SecretString) -> Result<Payload, OpsError> {
    let meta =
        std::fs::metadata(file).map_err(|e| OpsError::Io(format!("{}: {e}", file.display())))?;
    if meta.len() > MAX_FILE {
        return Err(OpsError::Export(format!(
            "{}: file too large",
            file.display()
        )));
    }
    let data = std::fs::read(file).map_err(|e| OpsError::Io(format!("{}: {e}", file.display())))?;
    parse(passphrase, &data)
}

/// Decrypts and parses an export held in memory (e.g. an upload).
pub fn parse(passphrase: &SecretString, data: &[u8]) -> Result<Payload, OpsError> {
    if data.len() as u64 > MAX_FILE {
        return Err(OpsError::Export("export too large".into()));
    }
    let plain = open(passphrase, data)?;
    let p: Payload = serde_json::from_slice(&plain).map_err(|e| {
        OpsError::Export(format!(
            "export content unreadable (at line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if p.version != 1 {
        return Err(OpsError::Export(format!(
            "export format version {} is not supported",
            p.version
        )));
    }
    Ok(p)
}

/// What `import` did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// One line per token record written.
    pub tokens: Vec<String>,
    /// `[[account]]` blocks in the export whose user name is not in the config.
    pub missing_accounts: Vec<ExportedAccount>,
    /// Accounts in both whose settings differ from the export (not applied).
    pub differing_accounts: Vec<String>,
}

/// Writes the export's token records into `store` (replacing only records of the
/// same account name) and compares its accounts with `config`. The config file is
/// never changed.
pub fn import(
    config: &Config,
    store: &TokenStore,
    payload: &Payload,
) -> Result<ImportReport, OpsError> {
    let mut report = ImportReport::default();
    for t in &payload.tokens {
        let existed = store.load(&t.account).ok().flatten().is_some();
        store.save(&t.account, &t.record())?;
        let configured = config.resolve_account(&t.account).is_some();
        report.tokens.push(format!(
            "{}: token record {}{}",
            t.account,
            if existed { "replaced" } else { "added" },
            if configured {
                ""
            } else {
                " (no [[account]] for it in the config yet)"
            }
        ));
    }
    for a in &payload.accounts {
        match config.account(&a.username) {
            None => report.missing_accounts.push(a.clone()),
            Some(current) if account_toml(current) != a.toml => {
                report.differing_accounts.push(a.username.clone())
            }
            Some(_) => {}
        }
    }
    Ok(report)
}

/// A TOML block with the `client_secret` line replaced by a pointer to `where_`.
pub fn redact_secret(toml: &str, where_: &str) -> String {
    toml.lines()
        .map(|l| {
            if l.trim_start().starts_with("client_secret") {
                format!("# client_secret = ... (see {where_})")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Largest refresh token accepted by `import-token`.
pub const MAX_TOKEN_LINE: usize = 16 * 1024;

/// Stores `refresh_token` for `account` with no usable access token, so the next use
/// refreshes.
pub fn import_token(
    account: &Account,
    store: &TokenStore,
    refresh_token: SecretString,
) -> Result<(), OpsError> {
    let t = refresh_token.expose_secret();
    if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(OpsError::Invalid(
            "expected one refresh token on one line of stdin".into(),
        ));
    }
    let rec = TokenRecord {
        account: account.username.clone(),
        access_token: SecretString::from(String::new()),
        refresh_token: Some(refresh_token),
        expires_at: Some(0),
        scopes: account.oauth.scopes.clone(),
        obtained_at: crate::oauth::outcome::unix_now(),
        last_refresh: None,
        needs_login: None,
        refresh_expires_at: None,
    };
    store.save(&account.username, &rec)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        let t = "[[account]]\nusername = \"a\"\nclient_secret = \"s3cret\"\n";
        let r = redact_secret(t, "f");
        assert!(!r.contains("s3cret") && r.contains("username"), "{r}");
    }
}
