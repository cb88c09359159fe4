//! Local users: which account a client may act as, and checking its password.
//!
//! Passwords are stored as Argon2id PHC strings. Verification runs on tokio's
//! blocking pool behind a semaphore, so a burst of logins can neither stall the async
//! workers nor fork unbounded CPU work. An unknown user costs the same hash as a
//! known one, so the reply timing does not tell them apart.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::app_passwords::AppPasswords;
use crate::config::Account;
use crate::proto::Credentials;
use crate::verdict_cache::VerdictCache;

/// A password hash that is not an Argon2id PHC string.
#[derive(Debug, thiserror::Error)]
#[error("not an Argon2id PHC hash (\"$argon2id$v=19$...\")")]
pub struct BadHash;

/// Checks that `phc` is an Argon2id PHC string.
pub fn check_phc(phc: &str) -> Result<(), BadHash> {
    let h = PasswordHash::new(phc).map_err(|_| BadHash)?;
    if h.algorithm != Algorithm::Argon2id.ident() || h.salt.is_none() || h.hash.is_none() {
        return Err(BadHash);
    }
    Ok(())
}

/// Hashes a password into an Argon2id PHC string with a fresh random salt.
pub fn hash_password(password: &SecretString) -> String {
    let salt = SaltString::encode_b64(&crate::secret::random_bytes::<16>())
        .expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .expect("default Argon2id parameters are valid")
        .to_string()
}

/// True if `password` matches the Argon2id PHC string `phc`.
pub fn verify(phc: &str, password: &SecretString) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

/// The configured accounts, ready to check logins against.
#[derive(Debug, Clone)]
pub struct Accounts {
    accounts: Arc<Vec<Account>>,
    /// Hash verified for unknown users, so they cost the same time.
    dummy: Arc<String>,
    pool: Arc<Semaphore>,
    app_passwords: AppPasswords,
    /// Recent successful checks: which password matched, and its hash (so a changed
    /// password or a revoked app password no longer matches the cached verdict).
    verdicts: Arc<VerdictCache<(Matched, String)>>,
}

/// Which of an account's passwords matched.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matched {
    Password,
    App(String),
}

impl Accounts {
    pub fn new(accounts: Vec<Account>) -> Self {
        let dummy = hash_password(&SecretString::from(crate::secret::random_token(16)));
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Accounts {
            accounts: Arc::new(accounts),
            dummy: Arc::new(dummy),
            pool: Arc::new(Semaphore::new(workers)),
            app_passwords: AppPasswords::none(),
            verdicts: Arc::default(),
        }
    }

    /// Also accepts the accounts' app passwords (see [`crate::app_passwords`]).
    pub fn with_app_passwords(mut self, app_passwords: AppPasswords) -> Self {
        self.app_passwords = app_passwords;
        self
    }

    /// The account `username` acts as: an exact account, else the concrete account
    /// of a template whose password file lists the user.
    pub fn find(&self, username: &str) -> Option<Account> {
        crate::config::resolve_in(&self.accounts, username)
    }

    /// The account these credentials authenticate, or `None`: the account's password
    /// or one of its app passwords. A SASL authorization identity other than the user
    /// name itself is refused: a client never acts as an account it did not
    /// authenticate for. For a template the account returned is the concrete one of
    /// this user (user name and upstream identity both the authenticated name).
    pub async fn authenticate(&self, creds: &Credentials) -> Option<Account> {
        let account = self.find(&creds.username);
        let identity_ok = creds.authzid.as_deref().is_none_or(|z| z == creds.username);
        let mut candidates = vec![(
            Matched::Password,
            match &account {
                Some(a) => a.password_hash.clone(),
                None => self.dummy.as_ref().clone(),
            },
        )];
        if let Some(a) = &account {
            candidates.extend(
                self.app_passwords
                    .for_account(&a.username)
                    .into_iter()
                    .map(|(name, hash)| (Matched::App(name), hash)),
            );
        }
        let secret = creds.password.expose_secret();
        let cached = self
            .verdicts
            .get(&creds.username, secret)
            .filter(|_| account.is_some())
            .filter(|hit| candidates.contains(hit));
        let matched = match cached {
            Some((m, _)) => Some(m),
            None => {
                let password = creds.password.clone();
                let _permit = self.pool.acquire().await.ok()?;
                let found = tokio::task::spawn_blocking(move || {
                    candidates
                        .into_iter()
                        .find(|(_, phc)| verify(phc, &password))
                })
                .await
                .ok()
                .flatten();
                if let (Some(hit), Some(_)) = (&found, &account) {
                    self.verdicts.insert(&creds.username, secret, hit.clone());
                }
                found.map(|(m, _)| m)
            }
        };
        match (account, matched) {
            (Some(a), Some(Matched::App(name)))
                if a.encrypt_with == crate::config::EncryptWith::ClientPassword =>
            {
                tracing::warn!(user = %a.username, app_password = %name, "app password refused: this account's tokens are encrypted with its main password (encrypt_with = \"client-password\")");
                None
            }
            (Some(a), Some(m)) if identity_ok => {
                if let Matched::App(name) = &m {
                    tracing::info!(user = %a.username, app_password = %name, "authenticated with an app password");
                }
                Some(a)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let pw = SecretString::from("correct horse");
        let phc = hash_password(&pw);
        assert!(phc.starts_with("$argon2id$"));
        check_phc(&phc).unwrap();
        assert!(verify(&phc, &pw));
        assert!(!verify(&phc, &SecretString::from("wrong")));
    }

    #[test]
    fn rejects_other_hashes() {
        assert!(check_phc("plaintext").is_err());
        assert!(
            check_phc(
                "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhhc2g"
            )
            .is_err()
        );
        assert!(check_phc("$argon2id$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$ZmFrZWhhc2hmYWtlaGFzaGZha2VoYXNoZmFrZWhhc2g").is_ok());
    }
}
