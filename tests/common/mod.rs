//! Shared helpers for the integration tests (`mod common;` in each test file).
//!
//! * [`dovecot::Dovecot`]: a private Dovecot 2.3 (IMAP, POP3, submission, plain and
//!   TLS) that accepts XOAUTH2/OAUTHBEARER tokens of an
//!   [`oauth_mail_proxy::authserver::AuthServer`];
//! * [`certs::TestCerts`]: a test CA and a server certificate for 127.0.0.1/localhost;
//! * [`smtp_sink::SmtpSink`]: where Dovecot's submission relays, recording messages;
//! * [`client`], [`imap_client`], [`pop3_client`], [`smtp_client`]: small line-based
//!   clients over plain TCP or TLS.
//!
//! Not every test binary uses every helper, hence the `allow`s.
#![allow(dead_code, unused_imports)]

pub mod admin;
pub mod canary;
pub mod certs;
pub mod client;
pub mod dovecot;
pub mod dovecot_sys;
pub mod fake_upstream;
pub mod imap_client;
pub mod pop3_client;
pub mod process;
pub mod proxy;
pub mod rig;
pub mod smtp_client;
pub mod smtp_sink;

pub use certs::TestCerts;
pub use client::{LineClient, b64, error_json, oauthbearer, plain, unb64, xoauth2};
pub use dovecot::Dovecot;
pub use imap_client::{ImapClient, ImapResponse};
pub use pop3_client::Pop3Client;
pub use smtp_client::{SmtpClient, SmtpReply};
pub use smtp_sink::{ReceivedMessage, SmtpSink};

/// Installs ring as the process-wide rustls provider (idempotent). The helpers here
/// build their configs with an explicit provider; code under test may not.
pub fn install_crypto_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}
