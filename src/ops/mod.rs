//! Account operations a mailbox admin needs, behind the CLI (and, later, the admin
//! page): [`status`], [`verify`] (with [`classify`] saying what a failure means),
//! [`logout`], [`export`] / import / `import-token`, and expiry notices ([`notify`]).
//!
//! Nothing here prints or logs a token, a client secret or a passphrase.

pub mod classify;
pub mod export;
pub mod logout;
pub mod notify;
pub mod passphrase;
pub mod status;
pub mod verify;
mod wire;

use crate::config::{Account, Config};

/// An account operation failed. Messages are safe to print.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("no [[account]] with username \"{account}\" in {file}")]
    NoAccount { account: String, file: String },
    #[error(transparent)]
    Store(#[from] crate::oauth::StoreError),
    #[error("{0}")]
    Io(String),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("{0}")]
    Export(String),
    #[error("{0}")]
    Passphrase(String),
    #[error("{0}")]
    Invalid(String),
}

/// The concrete accounts `filter` names (every account when `None`), in config order.
/// A template account (`*@domain`) stands for each user of its password file.
pub fn accounts(config: &Config, filter: Option<&str>) -> Result<Vec<Account>, OpsError> {
    let all: Vec<Account> = config
        .accounts
        .iter()
        .flat_map(|a| match &a.template {
            None => vec![a.clone()],
            Some(t) => t.users.keys().filter_map(|u| a.concrete(u)).collect(),
        })
        .collect();
    match filter {
        None => Ok(all),
        Some(name) => config
            .resolve_account(name)
            .map(|a| vec![a])
            .ok_or_else(|| OpsError::NoAccount {
                account: name.to_string(),
                file: config.file.display().to_string(),
            }),
    }
}
