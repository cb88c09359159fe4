//! POP3 before login: the two sans-I/O machines and what they are made of.
//!
//! * [`Pop3Downstream`] faces the legacy client (server role): greeting, CAPA, STLS,
//!   USER / PASS or AUTH PLAIN, then the final `+OK` and the bytes the client already
//!   pipelined.
//! * [`Pop3Upstream`] faces the real server (client role): greeting, CAPA, STLS, CAPA
//!   again, AUTH XOAUTH2 / OAUTHBEARER with an initial response, then the bytes the
//!   server already sent.
//!
//! [`parse`] holds the nom parsers, [`encode`] the lines we write, [`types`] the shared
//! shapes. After login neither machine is involved: the session splices the streams.

pub mod downstream;
pub mod encode;
pub mod parse;
pub mod types;
pub mod upstream;

pub use downstream::Pop3Downstream;
pub use types::{DownstreamEvent, LoginRejection, Pop3Error, UpstreamEvent};
pub use upstream::{Pop3Upstream, UPSTREAM_MAX_LINE};
