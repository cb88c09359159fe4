//! oauth-mail-proxy: lets legacy IMAP/POP3/SMTP clients log in with a local password
//! while the proxy logs in upstream with OAuth 2.0 (SASL XOAUTH2 / OAUTHBEARER).
//!
//! A map of the crate, following one connection:
//!
//! * [`config`] loads and validates the TOML file into a [`config::Config`] with no
//!   optional fields left; [`cli`] is the command line around it.
//! * [`listener`] binds each `[[listener]]`, accepts connections and hands each to
//!   [`session`], which runs one connection end to end:
//!   - the downstream machine ([`proto`]) greets the client and parses its login;
//!   - [`accounts`] checks the local password;
//!   - [`oauth`] hands out a fresh access token (refreshing it once per account);
//!   - [`connector`] opens the upstream connection and the upstream machine logs in
//!     with XOAUTH2/OAUTHBEARER;
//!   - [`splice`] copies bytes both ways until either side closes.
//! * [`driver`] is the one async loop that runs any sans-I/O machine over a
//!   [`stream::Stream`]; [`tls`] builds the rustls configurations.
//! * [`authserver`] is the small OAuth 2.0 authorization server used by the tests and
//!   the demo.

pub mod accounts;
pub mod admin;
pub mod app_passwords;
pub mod authserver;
pub mod cli;
pub mod config;
pub(crate) mod config_watch;
pub mod conn_limit;
pub mod connector;
pub mod demo;
pub mod driver;
pub mod error;
pub mod listener;
pub mod metrics;
pub mod oauth;
pub mod ops;
pub mod private_file;
pub mod proto;
pub mod reload;
pub mod secret;
pub mod session;
pub mod splice;
pub mod stream;
pub mod testkit;
pub mod throttle;
pub mod tls;
pub mod trace;
pub mod verdict_cache;
