//! A short-lived in-memory cache of successful local password checks, so a client
//! that logs in again and again does not pay an Argon2 hash every time.
//!
//! * Keyed by HMAC-SHA256 (RFC 2104) of the user name and password under a random
//!   key made when the cache is created (per process, never stored): the cache never
//!   holds a password, and its keys are useless outside this process.
//! * Only successes are stored. A failed login always pays the full check (and the
//!   caller's failure throttle).
//! * Entries live for a fixed TTL; the cache is bounded (expired entries are purged
//!   when it is full; if it is still full, new verdicts are simply not cached).
//! * The value stored lets the caller check the verdict still applies (for accounts:
//!   the password hash or app-password digest that matched, so a changed password or
//!   a revoked app password invalidates the entry at once). A new cache comes with
//!   every rebuilt `Accounts` (config reload), and [`VerdictCache::clear`] drops
//!   everything.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long a successful check is remembered.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5 * 60);
/// Most verdicts held at once.
pub const DEFAULT_CAPACITY: usize = 16_384;

type Key = [u8; 32];

/// Successful `(user, password)` checks, with a value of type `V` each.
pub struct VerdictCache<V> {
    hmac_key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Key, (Instant, V)>>,
}

impl<V: Clone> std::fmt::Debug for VerdictCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl<V: Clone> Default for VerdictCache<V> {
    fn default() -> Self {
        Self::new(DEFAULT_TTL, DEFAULT_CAPACITY)
    }
}

impl<V: Clone> VerdictCache<V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        VerdictCache {
            hmac_key: crate::secret::random_bytes::<32>(),
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, user: &str, password: &str) -> Key {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac_key).expect("HMAC takes any key");
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        mac.update(&(user.len() as u64).to_be_bytes());
        mac.update(user.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The value remembered for a successful check of `(user, password)`, if any and
    /// not expired.
    pub fn get(&self, user: &str, password: &str) -> Option<V> {
        let key = self.key(user, password);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&key) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers a successful check of `(user, password)`.
    pub fn insert(&self, user: &str, password: &str, value: V) {
        let key = self.key(user, password);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= self.capacity {
                return;
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets one `(user, password)` verdict.
    pub fn remove(&self, user: &str, password: &str) {
        let key = self.key(user, password);
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }

    /// Forgets every verdict.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Verdicts held (expired ones included until purged).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_successes_by_user_and_password() {
        let c = VerdictCache::new(Duration::from_secs(60), 10);
        assert_eq!(c.get("alice", "pw"), None);
        c.insert("alice", "pw", 1);
        assert_eq!(c.get("alice", "pw"), Some(1));
        assert_eq!(c.get("alice", "other"), None);
        assert_eq!(c.get("bob", "pw"), None);
        // The length prefix keeps the boundary between user and password.
        c.insert("ab", "c", 2);
        assert_eq!(c.get("a", "bc"), None);
        c.remove("alice", "pw");
        assert_eq!(c.get("alice", "pw"), None);
    }

    #[test]
    fn never_holds_the_password() {
        let c = VerdictCache::new(Duration::from_secs(60), 10);
        c.insert("alice", "hunter2-secret", ());
        let entries = c.entries.lock().unwrap();
        for key in entries.keys() {
            assert!(!key.windows(6).any(|w| w == b"hunter"));
        }
        // Another process (another key) derives other keys.
        let other = VerdictCache::<()>::new(Duration::from_secs(60), 10);
        assert!(!entries.contains_key(&other.key("alice", "hunter2-secret")));
    }

    #[test]
    fn entries_expire() {
        let c = VerdictCache::new(Duration::from_millis(20), 10);
        c.insert("alice", "pw", ());
        assert!(c.get("alice", "pw").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(c.get("alice", "pw").is_none());
        assert!(c.is_empty());
    }

    #[test]
    fn bounded_and_clearable() {
        let c = VerdictCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            c.insert(&format!("u{i}"), "pw", i);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get("u0", "pw"), Some(0));
        assert_eq!(c.get("u9", "pw"), None);
        c.clear();
        assert!(c.is_empty());
        c.insert("u9", "pw", 9);
        assert_eq!(c.get("u9", "pw"), Some(9));
    }

    #[test]
    fn full_cache_makes_room_from_expired_entries() {
        let c = VerdictCache::new(Duration::from_millis(20), 2);
        c.insert("a", "pw", ());
        c.insert("b", "pw", ());
        std::thread::sleep(Duration::from_millis(40));
        c.insert("c", "pw", ());
        assert!(c.get("c", "pw").is_some());
        assert_eq!(c.len(), 1);
    }
}
