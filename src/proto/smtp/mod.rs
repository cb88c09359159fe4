//! SMTP submission before AUTH: the sans-I/O machines and what they are made of.
//!
//! * [`SmtpDownstream`] faces the legacy client (server role): greeting, EHLO/HELO,
//!   STARTTLS, AUTH PLAIN / LOGIN with the `334` dance, then `235` and the bytes the
//!   client already pipelined.
//! * [`SmtpUpstream`] faces the real server (client role): greeting, EHLO, STARTTLS,
//!   EHLO, AUTH XOAUTH2 / OAUTHBEARER, then the bytes the server already sent.
//! * [`SmtpProbe`] learns the server's EHLO extensions (greeting, EHLO, STARTTLS, EHLO,
//!   QUIT) for the downstream EHLO reply; it shares the upstream machine's opening.
//!
//! [`parse`] holds the nom parsers, [`encode`] the lines we write, [`types`] the shared
//! shapes. After AUTH neither machine is involved: the session splices the streams.

pub mod downstream;
pub mod encode;
pub mod parse;
pub mod types;
pub mod upstream;

pub use downstream::SmtpDownstream;
pub use types::{DownstreamEvent, ProbeEvent, SmtpError, UpstreamEvent};
pub use upstream::probe::SmtpProbe;
pub use upstream::{SmtpUpstream, UPSTREAM_MAX_LINE};
