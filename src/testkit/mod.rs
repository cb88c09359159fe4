//! Test and demo helpers that stand in for the outside world.
//!
//! * [`mini_imap`]: a small IMAP4rev1 server that only takes OAuth 2.0 logins
//!   (SASL XOAUTH2 / OAUTHBEARER). It is the "local upstream" of the demo command and
//!   the lightweight upstream of the benchmarks. It shares no code with the proxy's own
//!   protocol machines ([`crate::proto`]), so it checks them as an independent peer.

pub mod dovecot_conf;
pub mod dovecot_sys;
pub mod mini_imap;
pub mod mini_smtp;

pub use mini_imap::{MiniImap, MiniImapConfig, TokenValidator};

#[cfg(test)]
mod tests;
