//! IMAP before login: the two sans-I/O machines and what they are made of.
//!
//! * [`ImapDownstream`] faces the legacy client (server role): greeting, CAPABILITY,
//!   STARTTLS, LOGIN / AUTHENTICATE PLAIN, then the final tagged OK with the client's
//!   tag and the bytes it already pipelined.
//! * [`ImapUpstream`] faces the real server (client role): greeting, CAPABILITY,
//!   STARTTLS, AUTHENTICATE XOAUTH2 / OAUTHBEARER, then the bytes the server already
//!   sent.
//!
//! [`parse`] holds the nom parsers, [`encode`] the lines we write, [`types`] the shared
//! shapes. After login neither machine is involved: the session splices the streams.

pub mod downstream;
pub mod encode;
pub mod parse;
pub mod types;
pub mod upstream;

pub use downstream::ImapDownstream;
pub use types::{DownstreamEvent, ImapError, LoginRejection, UpstreamEvent};
pub use upstream::{ImapUpstream, UPSTREAM_MAX_LINE};
