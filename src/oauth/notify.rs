//! Expiry notices: the [`TokenManager`](super::TokenManager) tells a [`Notifier`] when
//! an account stops getting tokens (refresh token rejected, an app-only fetch failing),
//! once per account per state change: the same reason is not repeated until the
//! account has obtained a token again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Why an account needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeReason {
    /// The token endpoint rejected the refresh token (`invalid_grant`).
    InvalidGrant,
    /// A `client_credentials` / `jwt_bearer` token fetch failed.
    FetchFailed,
    /// The refresh token nears a known expiry.
    RefreshTokenExpiring,
}

impl NoticeReason {
    /// The machine word (`OMP_REASON` of `notify_command`).
    pub fn word(self) -> &'static str {
        match self {
            NoticeReason::InvalidGrant => "invalid_grant",
            NoticeReason::FetchFailed => "fetch_failed",
            NoticeReason::RefreshTokenExpiring => "refresh_token_expiring",
        }
    }
}

/// Receives notices. `message` is human text without secrets. Called from async
/// code: must not block (spawn what takes time).
pub trait Notifier: Send + Sync + 'static {
    fn notify(&self, account: &str, reason: NoticeReason, message: &str);
}

/// A notifier plus the last reason told per account (the deduplication).
pub(super) struct Notices {
    notifier: Arc<dyn Notifier>,
    last: Mutex<HashMap<String, NoticeReason>>,
}

impl Notices {
    pub(super) fn new(notifier: Arc<dyn Notifier>) -> Self {
        Notices {
            notifier,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Tells the notifier unless it was told this reason for `account` already.
    pub(super) fn raise(&self, account: &str, reason: NoticeReason, message: &str) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.insert(account.to_owned(), reason) != Some(reason) {
            drop(last);
            self.notifier.notify(account, reason, message);
        }
    }

    /// `account` got a token: the next failure is a new state change.
    pub(super) fn clear(&self, account: &str) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Record(Mutex<Vec<(String, NoticeReason)>>);

    impl Notifier for Record {
        fn notify(&self, account: &str, reason: NoticeReason, _message: &str) {
            self.0.lock().unwrap().push((account.into(), reason));
        }
    }

    #[test]
    fn once_per_state_change() {
        let rec = Arc::new(Record::default());
        let n = Notices::new(rec.clone());
        n.raise("a", NoticeReason::InvalidGrant, "m");
        n.raise("a", NoticeReason::InvalidGrant, "m");
        n.raise("b", NoticeReason::InvalidGrant, "m");
        n.raise("a", NoticeReason::FetchFailed, "m");
        n.clear("a");
        n.raise("a", NoticeReason::FetchFailed, "m");
        assert_eq!(rec.0.lock().unwrap().len(), 4);
    }
}
