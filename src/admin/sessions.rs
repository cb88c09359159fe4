//! Admin page sessions, held in memory only (a restart logs the admin out).
//!
//! The cookie value is `<id>.<secret>`: the id finds the session, the secret is
//! compared in constant time, so a lookup's timing tells nothing about a secret. Each
//! session has its own anti-CSRF token for the forms of the page. The number of
//! sessions is bounded: expired ones go first, then the oldest.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a page session lasts after the login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Most sessions held at once.
pub const MAX_SESSIONS: usize = 256;

struct Session {
    secret: String,
    csrf: String,
    expires: Instant,
}

/// The live sessions.
pub(crate) struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Sessions {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session; returns its cookie value.
    pub fn create(&self) -> String {
        let id = crate::secret::random_token(12);
        let secret = crate::secret::random_token(32);
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(
            id.clone(),
            Session {
                secret: secret.clone(),
                csrf: crate::secret::random_token(24),
                expires: now + self.ttl,
            },
        );
        format!("{id}.{secret}")
    }

    /// The anti-CSRF token of the live session `cookie` names, if any.
    pub fn check(&self, cookie: &str) -> Option<String> {
        let (id, secret) = cookie.split_once('.')?;
        let mut map = self.lock();
        let s = map.get(id)?;
        if s.expires <= Instant::now() {
            map.remove(id);
            return None;
        }
        crate::secret::ct_eq(s.secret.as_bytes(), secret.as_bytes()).then(|| s.csrf.clone())
    }

    /// Ends the session `cookie` names (if it is live and the secret matches).
    pub fn remove(&self, cookie: &str) -> bool {
        if self.check(cookie).is_none() {
            return false;
        }
        let id = cookie.split_once('.').map_or("", |(id, _)| id);
        self.lock().remove(id).is_some()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_check_remove() {
        let s = Sessions::new(SESSION_TTL);
        let a = s.create();
        let csrf = s.check(&a).expect("live session");
        assert_eq!(s.check(&a), Some(csrf));
        let (id, _) = a.split_once('.').unwrap();
        assert_eq!(s.check(&format!("{id}.wrong")), None);
        assert_eq!(s.check(id), None);
        assert!(!s.remove(&format!("{id}.wrong")));
        assert!(s.remove(&a));
        assert_eq!(s.check(&a), None);
    }

    #[test]
    fn expired_sessions_are_refused() {
        let s = Sessions::new(Duration::ZERO);
        let a = s.create();
        assert_eq!(s.check(&a), None);
    }

    #[test]
    fn bounded() {
        let s = Sessions::new(SESSION_TTL);
        let first = s.create();
        for _ in 0..MAX_SESSIONS + 5 {
            s.create();
        }
        assert!(s.len() <= MAX_SESSIONS);
        assert_eq!(s.check(&first), None, "the oldest went first");
    }
}
