//! Connection caps: how many client connections one source IP address may have open
//! at once ([`SourceLimiter`]), the "busy" reply a refused connection gets, and a
//! rate-limited log line for refusals ([`RefusalLog`]).
//!
//! The global cap is a plain `tokio::sync::Semaphore` in `listener.rs`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::config::Protocol;

/// Open connections per source address, capped. An entry exists only while its
/// address has a connection open: the map does not grow over time.
#[derive(Debug)]
pub struct SourceLimiter {
    /// 0 = unlimited (nothing is counted).
    max: usize,
    counts: DashMap<IpAddr, usize>,
}

/// One counted connection; dropping it gives the slot back.
#[derive(Debug)]
#[must_use = "the slot is released when the guard is dropped"]
pub struct SourceGuard {
    /// `None` when the limiter is unlimited.
    slot: Option<(Arc<SourceLimiter>, IpAddr)>,
}

impl SourceLimiter {
    /// A limiter allowing `max` connections per address (0 = unlimited).
    pub fn new(max: usize) -> Arc<SourceLimiter> {
        Arc::new(SourceLimiter {
            max,
            counts: DashMap::new(),
        })
    }

    /// Counts a connection from `ip`, or `None` when `ip` already has `max` open.
    /// An IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<SourceGuard> {
        if self.max == 0 {
            return Some(SourceGuard { slot: None });
        }
        let ip = ip.to_canonical();
        match self.counts.entry(ip) {
            Entry::Occupied(mut e) => {
                if *e.get() >= self.max {
                    return None;
                }
                *e.get_mut() += 1;
            }
            Entry::Vacant(e) => {
                e.insert(1);
            }
        }
        Some(SourceGuard {
            slot: Some((self.clone(), ip)),
        })
    }

    /// Connections open from `ip` (0 when it has none).
    pub fn count(&self, ip: IpAddr) -> usize {
        self.counts.get(&ip.to_canonical()).map_or(0, |c| *c)
    }

    /// Addresses with at least one connection open.
    pub fn sources(&self) -> usize {
        self.counts.len()
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        let Some((limiter, ip)) = self.slot.take() else {
            return;
        };
        if let Entry::Occupied(mut e) = limiter.counts.entry(ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

/// What a refused connection is told before it is closed (plaintext listeners only:
/// an implicit-TLS port gets no plaintext, it is just closed).
pub fn busy_reply(protocol: Protocol) -> &'static [u8] {
    match protocol {
        Protocol::Imap => b"* BYE [UNAVAILABLE] too many connections\r\n",
        Protocol::Pop3 => b"-ERR [SYS/TEMP] too many connections\r\n",
        Protocol::Smtp => b"421 4.7.0 too many connections\r\n",
    }
}

/// Lets a refusal be logged at most once per interval, counting the ones it held back.
#[derive(Debug)]
pub struct RefusalLog {
    interval: Duration,
    /// (when the last line was logged, refusals not logged since).
    state: Mutex<(Option<Instant>, u64)>,
}

impl RefusalLog {
    pub fn new(interval: Duration) -> RefusalLog {
        RefusalLog {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when this refusal should be logged, `n` being how many were held
    /// back since the last line; `None` to stay quiet.
    pub fn should_log(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match s.0 {
            Some(last) if now.duration_since(last) < self.interval => {
                s.1 += 1;
                None
            }
            _ => {
                let held = s.1;
                *s = (Some(now), 0);
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_per_source_and_removes_entries_at_zero() {
        let l = SourceLimiter::new(2);
        let a = ip("192.0.2.1");
        let g1 = l.try_acquire(a).expect("first");
        let g2 = l.try_acquire(a).expect("second");
        assert!(l.try_acquire(a).is_none(), "third from the same source");
        let other = l.try_acquire(ip("192.0.2.2")).expect("another source");
        assert_eq!((l.count(a), l.sources()), (2, 2));
        drop(g1);
        assert_eq!(l.count(a), 1);
        let g3 = l.try_acquire(a).expect("a slot was freed");
        drop((g2, g3, other));
        assert_eq!(l.sources(), 0, "no entry left once every guard is gone");
        assert_eq!(l.count(a), 0);
    }

    #[test]
    fn map_does_not_grow_with_many_sources() {
        let l = SourceLimiter::new(1);
        for i in 0..1000u32 {
            let g = l.try_acquire(IpAddr::from(i.to_be_bytes())).expect("free");
            assert_eq!(l.sources(), 1);
            drop(g);
        }
        assert_eq!(l.sources(), 0);
    }

    #[test]
    fn mapped_ipv6_counts_as_ipv4() {
        let l = SourceLimiter::new(1);
        let _g = l.try_acquire(ip("127.0.0.1")).unwrap();
        assert!(l.try_acquire(ip("::ffff:127.0.0.1")).is_none());
    }

    #[test]
    fn zero_means_unlimited_and_counts_nothing() {
        let l = SourceLimiter::new(0);
        let guards: Vec<_> = (0..100)
            .map(|_| l.try_acquire(ip("::1")).expect("unlimited"))
            .collect();
        assert_eq!(l.sources(), 0);
        drop(guards);
    }

    #[test]
    fn refusal_log_is_rate_limited() {
        let log = RefusalLog::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(log.should_log(t), Some(0));
        assert_eq!(log.should_log(t + Duration::from_secs(1)), None);
        assert_eq!(log.should_log(t + Duration::from_secs(2)), None);
        assert_eq!(log.should_log(t + Duration::from_secs(11)), Some(2));
        assert_eq!(log.should_log(t + Duration::from_secs(12)), None);
    }
}
