//! How long an account leaves the token endpoint alone after a transient failure.
//!
//! The first failure waits the base delay (1 s by default), each further failure in a
//! row doubles it, up to a cap (5 minutes). A `Retry-After` from the server is
//! honoured, but capped the same way. During the wait, logins that need a new access
//! token get the temporary error at once, without a request; a success (or a newer
//! grant found in the store) ends it.

use std::time::{Duration, Instant};

/// Base delay after the first transient failure.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// Cap of the doubling delay and of a server's `Retry-After`.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(300);

/// The last transient failure of an account and the retry wait it started.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// Why (safe to log and to show in `status`).
    pub msg: String,
    /// No new request before this.
    pub until: Instant,
    /// Transient failures in a row, this one included.
    pub streak: u32,
}

impl Failure {
    /// The failure following `prev` (if the account was already failing): `base`
    /// doubled per failure in a row, at least `retry_after`, never more than `cap`.
    pub fn next(
        prev: Option<&Failure>,
        msg: String,
        base: Duration,
        cap: Duration,
        retry_after: Option<Duration>,
    ) -> Failure {
        let streak = prev.map_or(1, |p| p.streak.saturating_add(1));
        let wait = delay(base, cap, streak, retry_after);
        Failure {
            msg,
            until: Instant::now() + wait,
            streak,
        }
    }

    /// The wait it started has not ended yet.
    pub fn active(&self) -> bool {
        Instant::now() < self.until
    }

    /// What is left of the wait.
    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }
}

/// The wait after the `streak`-th transient failure in a row.
pub(crate) fn delay(
    base: Duration,
    cap: Duration,
    streak: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let doublings = streak.saturating_sub(1).min(30);
    let exp = base.saturating_mul(1u32 << doublings).min(cap);
    match retry_after {
        Some(ra) => exp.max(ra.min(cap)),
        None => exp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn doubles_up_to_the_cap() {
        let cap = MAX_RETRY_BACKOFF;
        let got: Vec<u64> = (1..=12).map(|n| delay(S, cap, n, None).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(delay(S, cap, u32::MAX, None), cap);
        assert_eq!(delay(Duration::ZERO, cap, 5, None), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let cap = MAX_RETRY_BACKOFF;
        assert_eq!(delay(S, cap, 1, Some(30 * S)), 30 * S);
        // A shorter Retry-After does not shorten the doubling delay.
        assert_eq!(delay(S, cap, 4, Some(2 * S)), 8 * S);
        assert_eq!(delay(S, cap, 1, Some(86_400 * S)), cap);
        assert_eq!(delay(Duration::ZERO, cap, 1, Some(3 * S)), 3 * S);
    }

    #[test]
    fn streak_counts_failures_in_a_row() {
        let a = Failure::next(None, "a".into(), S, MAX_RETRY_BACKOFF, None);
        let b = Failure::next(Some(&a), "b".into(), S, MAX_RETRY_BACKOFF, None);
        assert_eq!((a.streak, b.streak), (1, 2));
        assert!(b.active() && b.remaining() > S && b.remaining() <= 2 * S);
        let gone = Failure::next(None, "c".into(), Duration::ZERO, MAX_RETRY_BACKOFF, None);
        assert!(!gone.active());
    }
}
