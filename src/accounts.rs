//! Local users: which account a client may act as, and checking its password.
//!
//! Passwords are stored as Argon2id PHC strings. Verification runs on tokio's
//! blocking pool behind a semaphore, so a burst of logins can neither stall the async
//! workers nor fork unbounded CPU work.
//!
//! **Constant cost.** Every check (not answered from the verdict cache) costs exactly
//! one Argon2id verification — the account's hash, or a dummy hash for an unknown user
//! or a template's unlisted user — plus [`MAX_PER_ACCOUNT`] constant-time comparisons
//! of SHA-256 digests against the account's app passwords (padded with dummies; see
//! [`crate::app_passwords`] for why app passwords need no Argon2). So the reply timing
//! does not tell an unknown user from a wrong password, nor an account with 16 app
//! passwords from one with none.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::app_passwords::{AppPasswords, MAX_PER_ACCOUNT};
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
    /// Recent successful checks: which password matched, and its hash or digest (so a
    /// changed password or a revoked app password no longer matches the cached verdict).
    verdicts: Arc<VerdictCache<(Matched, Stored)>>,
    /// Argon2 verifications run so far (see [`Accounts::argon2_checks`]).
    argon2_runs: Arc<AtomicU64>,
}

/// What a matched password was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stored {
    Hash(String),
    Digest([u8; 32]),
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
            argon2_runs: Arc::default(),
        }
    }

    /// How many Argon2 verifications this set of accounts has run (clones share the
    /// count). Every login not answered from the verdict cache costs exactly one.
    pub fn argon2_checks(&self) -> u64 {
        self.argon2_runs.load(Ordering::Relaxed)
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
        let phc = match &account {
            Some(a) => a.password_hash.clone(),
            None => self.dummy.as_ref().clone(),
        };
        // Looked up (one `stat`) for unknown users too, so they cost the same.
        let apps = self.app_passwords.for_account(
            account
                .as_ref()
                .map_or(creds.username.as_str(), |a| a.username.as_str()),
        );
        let apps = if account.is_some() { apps } else { Vec::new() };
        let secret = creds.password.expose_secret();
        let cached = self
            .verdicts
            .get(&creds.username, secret)
            .filter(|_| account.is_some())
            .filter(|(m, stored)| match (m, stored) {
                (Matched::Password, Stored::Hash(h)) => *h == phc,
                (Matched::App(name), Stored::Digest(d)) => {
                    apps.iter().any(|(n, a)| n == name && a == d)
                }
                _ => false,
            });
        let matched = match cached {
            Some((m, _)) => Some(m),
            None => {
                let found = self.check(phc, apps, creds.password.clone()).await;
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

impl Accounts {
    /// The full check on the blocking pool: one Argon2 verification of `phc` and
    /// [`MAX_PER_ACCOUNT`] digest comparisons, whatever matches. The password wins over
    /// an app password (they cannot both match in practice).
    async fn check(
        &self,
        phc: String,
        apps: Vec<(String, [u8; 32])>,
        password: SecretString,
    ) -> Option<(Matched, Stored)> {
        let _permit = self.pool.acquire().await.ok()?;
        let runs = self.argon2_runs.clone();
        tokio::task::spawn_blocking(move || {
            let digest = crate::app_passwords::digest(password.expose_secret().as_bytes());
            let mut app = None;
            for i in 0..MAX_PER_ACCOUNT {
                // Past the account's own, compare against a digest nothing matches.
                let (name, stored) = match apps.get(i) {
                    Some((n, d)) => (Some(n), *d),
                    None => (None, [0u8; 32]),
                };
                let hit = crate::secret::ct_eq(&digest, &stored);
                if let (true, Some(n), None) = (hit, name, &app) {
                    app = Some((Matched::App(n.clone()), Stored::Digest(stored)));
                }
            }
            runs.fetch_add(1, Ordering::Relaxed);
            if verify(&phc, &password) {
                return Some((Matched::Password, Stored::Hash(phc)));
            }
            app
        })
        .await
        .ok()
        .flatten()
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
