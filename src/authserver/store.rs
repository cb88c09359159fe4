//! The authorization server's memory: pending codes, access and refresh tokens.
//!
//! Tokens are random ([`crate::secret::random_token`]) and stored only as SHA-256
//! hashes, so lookups do not compare secrets byte by byte and a debug dump of the
//! store reveals nothing usable. Every token belongs to a *family*: the chain of
//! tokens grown from one authorization code. Replaying a code revokes its family
//! (RFC 6749 §4.1.2).
//!
//! This file holds the token side (issue, refresh, introspect, revoke); the
//! authorization codes are in [`codes`].

mod codes;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::error::OAuthError;
use crate::secret::random_token;

pub(crate) use codes::CodeGrant;

/// Random bytes per code or token (256 bits).
const TOKEN_BYTES: usize = 32;

type Key = [u8; 32];

fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[derive(Debug)]
struct PendingCode {
    grant: CodeGrant,
    expires: Instant,
}

#[derive(Debug)]
struct AccessToken {
    user: String,
    client_id: String,
    scope: String,
    issued: SystemTime,
    expires: SystemTime,
    family: u64,
}

#[derive(Debug)]
struct RefreshToken {
    user: String,
    client_id: String,
    scope: String,
    family: u64,
}

/// Tokens handed out by one successful grant. `Debug` redacts the tokens.
pub(crate) struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: u64,
    /// `refresh_token_expires_in`, sent with a refresh token when set.
    pub refresh_expires_in: Option<u64>,
    pub scope: String,
    pub user: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("access_token", &"[REDACTED]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scope", &self.scope)
            .field("user", &self.user)
            .finish()
    }
}

/// What introspection reports about an active access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActiveToken {
    pub user: String,
    pub client_id: String,
    pub scope: String,
    pub iat: u64,
    pub exp: u64,
}

#[derive(Debug)]
pub(crate) struct Store {
    lifetime: Duration,
    /// Announced (not enforced) lifetime of refresh tokens.
    refresh_lifetime: Option<Duration>,
    codes: HashMap<Key, PendingCode>,
    /// Codes already exchanged, kept until they would have expired, with their family.
    redeemed: HashMap<Key, (Instant, u64)>,
    access: HashMap<Key, AccessToken>,
    refresh: HashMap<Key, RefreshToken>,
    next_family: u64,
}

impl Store {
    pub(crate) fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            refresh_lifetime: None,
            codes: HashMap::new(),
            redeemed: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            next_family: 1,
        }
    }

    pub(crate) fn set_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime;
    }

    pub(crate) fn set_refresh_lifetime(&mut self, lifetime: Option<Duration>) {
        self.refresh_lifetime = lifetime;
    }

    /// Exchanges a refresh token. With `rotate`, the presented token is replaced by
    /// a new one and stops working.
    pub(crate) fn refresh(
        &mut self,
        token: &str,
        client_id: &str,
        scope: Option<&str>,
        rotate: bool,
    ) -> Result<Issued, OAuthError> {
        let k = key(token);
        let rt = self
            .refresh
            .get(&k)
            .ok_or(OAuthError::InvalidGrant("unknown or revoked refresh token"))?;
        if rt.client_id != client_id {
            return Err(OAuthError::InvalidGrant(
                "refresh token was issued to another client",
            ));
        }
        let scope = match scope {
            None => rt.scope.clone(),
            Some(s) if is_subset(s, &rt.scope) => s.to_owned(),
            Some(_) => return Err(OAuthError::InvalidScope),
        };
        let (user, family) = (rt.user.clone(), rt.family);
        if !rotate {
            let mut issued = self.issue(&user, client_id, &scope, family, false);
            issued.refresh_token = Some(token.to_owned());
            return Ok(issued);
        }
        self.refresh.remove(&k);
        Ok(self.issue(&user, client_id, &scope, family, true))
    }

    /// An access token (and, when `with_refresh`, a refresh token) for `user` in a
    /// new token family.
    pub(crate) fn issue_new(
        &mut self,
        user: &str,
        client_id: &str,
        scope: &str,
        with_refresh: bool,
    ) -> Issued {
        let family = self.new_family();
        self.issue(user, client_id, scope, family, with_refresh)
    }

    /// The token's details while it is known, unexpired and not revoked.
    pub(crate) fn introspect(&self, token: &str) -> Option<ActiveToken> {
        let at = self.access.get(&key(token))?;
        (SystemTime::now() < at.expires).then(|| ActiveToken {
            user: at.user.clone(),
            client_id: at.client_id.clone(),
            scope: at.scope.clone(),
            iat: unix_secs(at.issued),
            exp: unix_secs(at.expires),
        })
    }

    /// Forgets every access and refresh token of `user`.
    pub(crate) fn revoke_user(&mut self, user: &str) {
        self.access.retain(|_, t| t.user != user);
        self.refresh.retain(|_, t| t.user != user);
    }

    /// RFC 7009: revokes `token` if `client_id` holds it. A refresh token takes its
    /// whole family with it; an access token goes alone. True when a token was found.
    /// (Both maps are looked up, so `token_type_hint` is only checked, not needed.)
    pub(crate) fn revoke_token(&mut self, token: &str, client_id: &str) -> bool {
        let k = key(token);
        self.revoke_refresh(&k, client_id) || self.revoke_access(&k, client_id)
    }

    fn revoke_refresh(&mut self, k: &Key, client_id: &str) -> bool {
        match self.refresh.get(k) {
            Some(rt) if rt.client_id == client_id => {
                let family = rt.family;
                self.revoke_family(family);
                true
            }
            _ => false,
        }
    }

    fn revoke_access(&mut self, k: &Key, client_id: &str) -> bool {
        match self.access.get(k) {
            Some(at) if at.client_id == client_id => {
                self.access.remove(k);
                true
            }
            _ => false,
        }
    }

    fn revoke_family(&mut self, family: u64) {
        self.access.retain(|_, t| t.family != family);
        self.refresh.retain(|_, t| t.family != family);
    }

    fn new_family(&mut self) -> u64 {
        self.next_family += 1;
        self.next_family
    }

    fn issue(
        &mut self,
        user: &str,
        client_id: &str,
        scope: &str,
        family: u64,
        with_refresh: bool,
    ) -> Issued {
        self.purge();
        let access_token = random_token(TOKEN_BYTES);
        let issued = SystemTime::now();
        self.access.insert(
            key(&access_token),
            AccessToken {
                user: user.to_owned(),
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                issued,
                expires: issued + self.lifetime,
                family,
            },
        );
        let refresh_token = with_refresh.then(|| {
            let rt = random_token(TOKEN_BYTES);
            self.refresh.insert(
                key(&rt),
                RefreshToken {
                    user: user.to_owned(),
                    client_id: client_id.to_owned(),
                    scope: scope.to_owned(),
                    family,
                },
            );
            rt
        });
        Issued {
            access_token,
            refresh_expires_in: refresh_token
                .as_ref()
                .and(self.refresh_lifetime)
                .map(|d| d.as_secs()),
            refresh_token,
            // Rounded up, so a client never believes a token lives longer than it does
            // only because of truncation of a sub-second lifetime to 0.
            expires_in: self.lifetime.as_secs() + u64::from(self.lifetime.subsec_nanos() > 0),
            scope: scope.to_owned(),
            user: user.to_owned(),
        }
    }

    /// Drops expired codes and access tokens so a long-running demo stays small.
    fn purge(&mut self) {
        let now = Instant::now();
        let wall = SystemTime::now();
        self.codes.retain(|_, c| c.expires > now);
        self.redeemed.retain(|_, (expires, _)| *expires > now);
        self.access.retain(|_, t| t.expires > wall);
    }
}

/// True when every space-separated scope of `requested` is in `granted`.
fn is_subset(requested: &str, granted: &str) -> bool {
    requested
        .split_ascii_whitespace()
        .all(|s| granted.split_ascii_whitespace().any(|g| g == s))
}

#[cfg(test)]
mod tests;
