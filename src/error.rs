//! Session errors, tagged with the side that failed (pingora's `ErrorSource`).

use std::fmt;

/// Which side of a proxied connection an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The legacy client talking to us.
    Downstream,
    /// The real mail server.
    Upstream,
    /// The proxy itself (token store, configuration, ...).
    Internal,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Downstream => "downstream",
            Side::Upstream => "upstream",
            Side::Internal => "internal",
        })
    }
}

/// Why a session ended early. Every message is safe to log: no secrets.
#[derive(Debug, thiserror::Error)]
#[error("{side}: {message}")]
pub struct SessionError {
    pub side: Side,
    pub message: String,
}

impl SessionError {
    pub fn new(side: Side, message: impl fmt::Display) -> Self {
        SessionError {
            side,
            message: message.to_string(),
        }
    }
}
