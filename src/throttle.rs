//! Failed-login throttling: a penalty per source address and per user name that
//! doubles with each failure (2 s, 4 s, 8 s, capped at 15 s by default) and decays
//! when no failure has been seen for a while. There is no permanent lockout, and
//! unknown users are throttled exactly like wrong passwords, so the delay reveals
//! nothing. The state is bounded: old entries are dropped first.
//!
//! Sans-I/O like the protocol machines: callers pass the current time.

use std::net::IpAddr;
use std::time::Duration;

use dashmap::DashMap;
use tokio::time::Instant;

/// Most keys tracked at once; beyond it, entries older than the decay window go
/// first, then the map is cleared (a flood of sources cannot grow memory).
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Source(IpAddr),
    User(String),
}

#[derive(Debug)]
pub struct Throttle {
    base: Duration,
    max: Duration,
    /// A key with no failure for this long starts from zero again.
    decay: Duration,
    entries: DashMap<Key, Entry>,
}

impl Throttle {
    pub fn new(base: Duration, max: Duration) -> Self {
        Throttle {
            base,
            max: max.max(base),
            decay: (max * 4).max(Duration::from_secs(60)),
            entries: DashMap::new(),
        }
    }

    fn failures(&self, key: &Key, now: Instant) -> u32 {
        self.entries
            .get(key)
            .filter(|e| now.saturating_duration_since(e.last) < self.decay)
            .map_or(0, |e| e.failures)
    }

    /// Records a failed login from `source` for `user` and returns how long to wait
    /// before answering it.
    pub fn failed(&self, source: IpAddr, user: &str, now: Instant) -> Duration {
        self.prune(now);
        let mut worst = 0;
        for key in [Key::Source(source), Key::User(user.to_ascii_lowercase())] {
            let n = self.failures(&key, now).saturating_add(1);
            self.entries.insert(
                key,
                Entry {
                    failures: n,
                    last: now,
                },
            );
            worst = worst.max(n);
        }
        self.delay(worst)
    }

    /// A successful login forgets the user's failures (not the source's: one good
    /// account must not clear the penalty of a source guessing others).
    pub fn succeeded(&self, user: &str) {
        self.entries.remove(&Key::User(user.to_ascii_lowercase()));
    }

    fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }

    fn prune(&self, now: Instant) {
        if self.entries.len() < MAX_ENTRIES {
            return;
        }
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last) < self.decay);
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    fn t() -> Throttle {
        Throttle::new(Duration::from_secs(2), Duration::from_secs(15))
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let t = t();
        let now = Instant::now();
        let delays: Vec<u64> = (0..6)
            .map(|_| t.failed(A, "alice", now).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 15, 15, 15]);
    }

    #[test]
    fn per_user_across_sources_and_per_source_across_users() {
        let t = t();
        let now = Instant::now();
        t.failed(A, "alice", now);
        t.failed(A, "alice", now);
        // Another source guessing alice: alice's penalty applies.
        assert_eq!(t.failed(B, "Alice", now), Duration::from_secs(8));
        // Source A trying another user: A's penalty applies.
        assert_eq!(t.failed(A, "bob", now), Duration::from_secs(8));
    }

    #[test]
    fn decays_and_never_locks_out() {
        let t = t();
        let now = Instant::now();
        for _ in 0..50 {
            t.failed(A, "alice", now);
        }
        assert_eq!(t.failed(A, "alice", now), Duration::from_secs(15));
        let later = now + Duration::from_secs(61);
        assert_eq!(t.failed(A, "alice", later), Duration::from_secs(2));
    }

    #[test]
    fn success_clears_the_user_not_the_source() {
        let t = t();
        let now = Instant::now();
        t.failed(A, "alice", now);
        t.failed(A, "alice", now);
        t.succeeded("alice");
        assert_eq!(t.failed(B, "alice", now), Duration::from_secs(2));
        assert_eq!(t.failed(A, "carol", now), Duration::from_secs(8));
    }

    #[test]
    fn bounded() {
        let t = Throttle::new(Duration::from_millis(1), Duration::from_millis(8));
        let now = Instant::now();
        for i in 0..(MAX_ENTRIES as u32 / 2 + 10) {
            t.failed(A, &format!("user{i}"), now);
        }
        assert!(t.entries.len() <= MAX_ENTRIES);
    }
}
