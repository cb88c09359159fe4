//! `export` / `import` / `import-token`.
//!
//! Export file format (all integers little-endian):
//!
//! | bytes | content                                         |
//! |-------|-------------------------------------------------|
//! | 8     | magic `OMPEXP1\n`                               |
//! | 4+4+4 | Argon2id memory (KiB), iterations, parallelism  |
//! | 16    | random salt                                     |
//! | 24    | random XChaCha20-Poly1305 nonce                 |
//! | rest  | ciphertext of the JSON [`Payload`]              |
//!
//! The key is Argon2id(passphrase, salt) with the header's parameters; the whole
//! header is the AEAD's associated data, so a changed parameter, salt or nonce fails
//! like a wrong passphrase. The payload holds the accounts as resolved (each as a
//! TOML `[[account]]` block, client secret included) and their token records.

use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::OpsError;
use crate::config::{Account, Config, Provider};
use crate::oauth::{TokenRecord, TokenStore};
use crate::proto::Mechanism;

const MAGIC: &[u8; 8] = b"OMPEXP1\n";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 8 + 12 + SALT_LEN + NONCE_LEN;
/// Argon2id parameters of new exports (memory in KiB, iterations, lanes).
const KDF: (u32, u32, u32) = (64 * 1024, 3, 1);
/// Largest parameters accepted when reading (a crafted file must not exhaust memory).
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
/// Largest export file read.
const MAX_FILE: u64 = 64 << 20;

/// The decrypted content of an export file.
#[derive(Debug, Deserialize)]
pub struct Payload {
    pub version: u32,
    pub created_at: u64,
    pub accounts: Vec<ExportedAccount>,
    pub tokens: Vec<ExportedToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportedAccount {
    pub username: String,
    /// The account as a TOML `[[account]]` block.
    pub toml: String,
}

/// A token record as read from an export.
#[derive(Debug, Deserialize)]
pub struct ExportedToken {
    pub account: String,
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub obtained_at: u64,
    pub last_refresh: Option<u64>,
    pub needs_login: Option<String>,
    #[serde(default)]
    pub refresh_expires_at: Option<u64>,
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    version: u32,
    created_at: u64,
    accounts: &'a [ExportedAccount],
    tokens: Vec<TokenOut<'a>>,
}

#[derive(Serialize)]
struct TokenOut<'a> {
    account: &'a str,
    access_token: &'a str,
    refresh_token: Option<&'a str>,
    expires_at: Option<u64>,
    scopes: &'a [String],
    obtained_at: u64,
    last_refresh: Option<u64>,
    needs_login: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_expires_at: Option<u64>,
}

impl ExportedToken {
    pub fn record(&self) -> TokenRecord {
        TokenRecord {
            account: self.account.clone(),
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
            expires_at: self.expires_at,
            scopes: self.scopes.clone(),
            obtained_at: self.obtained_at,
            last_refresh: self.last_refresh,
            needs_login: self.needs_login.clone(),
            refresh_expires_at: self.refresh_expires_at,
        }
    }
}

/// The resolved settings of an account, as written back into TOML.
#[derive(Serialize)]
struct AccountToml<'a> {
    username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_username: Option<&'a str>,
    provider: &'static str,
    flow: &'static str,
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    authorize_url: &'a str,
    token_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revocation_url: Option<&'a str>,
    scopes: &'a [String],
    mechanism: &'static str,
}

#[derive(Serialize)]
struct AccountsToml<'a> {
    account: [AccountToml<'a>; 1],
}

/// `account` as a TOML `[[account]]` block (client secret included).
pub fn account_toml(a: &Account) -> String {
    let o = &a.oauth;
    let t = AccountToml {
        username: &a.username,
        password_hash: (a.template.is_none()).then_some(a.password_hash.as_str()),
        password_file: a
            .template
            .as_ref()
            .map(|t| t.password_file.display().to_string()),
        upstream_username: (a.template.is_none() && a.upstream_username != a.username)
            .then_some(a.upstream_username.as_str()),
        provider: match o.provider {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
            Provider::Custom => "custom",
        },
        flow: o.flow.name(),
        client_id: &o.client_id,
        client_secret: o.client_secret.as_ref().map(|s| s.expose_secret()),
        authorize_url: o.authorize_url.as_str(),
        token_url: o.token_url.as_str(),
        revocation_url: o.revocation_url.as_ref().map(|u| u.as_str()),
        scopes: &o.scopes,
        mechanism: match a.mechanism {
            Mechanism::Xoauth2 => "xoauth2",
            Mechanism::Oauthbearer => "oauthbearer",
        },
    };
    toml::to_string(&AccountsToml { account: [t] }).unwrap_or_default()
}

fn kdf(
    passphrase: &SecretString,
    salt: &[u8],
    (m, t, p): (u32, u32, u32),
) -> Result<Zeroizing<[u8; 32]>, OpsError> {
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| OpsError::Export(format!("bad key derivation parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, key.as_mut())
        .map_err(|e| OpsError::Export(format!("key derivation failed: {e}")))?;
    Ok(key)
}

/// Encrypts `plaintext` into the export format.
pub fn seal(passphrase: &SecretString, plaintext: &[u8]) -> Result<Vec<u8>, OpsError> {
    seal_with(passphrase, plaintext, KDF)
}

fn seal_with(
    passphrase: &SecretString,
    plaintext: &[u8],
    params: (u32, u32, u32),
) -> Result<Vec<u8>, OpsError> {
    let salt = crate::secret::random_bytes::<SALT_LEN>();
    let nonce = crate::secret::random_bytes::<NONCE_LEN>();
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + 16);
    out.extend_from_slice(MAGIC);
    for v in [params.0, params.1, params.2] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let key = kdf(passphrase, &salt, params)?;
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            AeadPayload {
                msg: plaintext,
                aad: &out,
            },
        )
        .map_err(|_| OpsError::Export("encryption failed".into()))?;
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts an export file's bytes; a wrong passphrase or any change to the file is
/// the same error.
pub fn open(passphrase: &SecretString, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpsError> {
    if data.len() < HEADER_LEN + 16 || &data[..8] != MAGIC {
        return Err(OpsError::Export(
            "not an oauth-mail-proxy export file".into(),
        ));
    }
    let word = |i: usize| u32::from_le_bytes(data[8 + 4 * i..12 + 4 * i].try_into().unwrap());
    let params = (word(0), word(1), word(2));
    if params.0 > MAX_MEMORY_KIB || params.1 > MAX_ITERATIONS || params.2 > 16 {
        return Err(OpsError::Export(
            "export file asks for excessive key derivation parameters".into(),
        ));
    }
    let salt = &data[20..20 + SALT_LEN];
    let nonce = &data[20 + SALT_LEN..HEADER_LEN];
    let key = kdf(passphrase, salt, params)?;
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            AeadPayload {
                msg: &data[HEADER_LEN..],
                aad: &data[..HEADER_LEN],
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| {
            OpsError::Export(
                "cannot decrypt the export: wrong passphrase, or the file was modified".into(),
            )
        })
}

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

    /// Cheap parameters so the tests stay fast.
    const FAST: (u32, u32, u32) = (64, 1, 1);

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    #[test]
    fn round_trip_and_tamper() {
        let sealed = seal_with(&pw("correct horse"), b"{\"hello\":1}", FAST).unwrap();
        assert_eq!(&sealed[..8], MAGIC);
        assert_eq!(
            open(&pw("correct horse"), &sealed).unwrap().as_slice(),
            b"{\"hello\":1}"
        );
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        let e = open(&pw("wrong horse"), &sealed).unwrap_err();
        assert!(e.to_string().contains("wrong passphrase"), "{e}");
        // Every byte after the magic matters: parameters, salt, nonce, ciphertext, tag.
        for i in [8, 12, 20, 40, HEADER_LEN, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(open(&pw("correct horse"), &t).is_err(), "byte {i}");
        }
        assert!(open(&pw("correct horse"), &sealed[..sealed.len() - 1]).is_err());
        assert!(open(&pw("correct horse"), b"OMPTOK1\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx").is_err());
        // Fresh salt and nonce every time.
        let again = seal_with(&pw("correct horse"), b"{\"hello\":1}", FAST).unwrap();
        assert_ne!(sealed, again);
    }

    #[test]
    fn excessive_parameters_refused() {
        let mut sealed = seal_with(&pw("p"), b"x", FAST).unwrap();
        sealed[8..12].copy_from_slice(&(MAX_MEMORY_KIB + 1).to_le_bytes());
        let e = open(&pw("p"), &sealed).unwrap_err();
        assert!(e.to_string().contains("excessive"), "{e}");
    }

    #[test]
    fn redaction() {
        let t = "[[account]]\nusername = \"a\"\nclient_secret = \"s3cret\"\n";
        let r = redact_secret(t, "f");
        assert!(!r.contains("s3cret") && r.contains("username"), "{r}");
    }
}
