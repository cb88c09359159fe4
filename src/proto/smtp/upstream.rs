//! The machine facing the real SMTP server (client role), up to a finished OAuth login.
//!
//! greeting (`220`, possibly multi-line) → `EHLO` → `STARTTLS` when required (then
//! `EHLO` again: nothing learned in cleartext is kept) → `AUTH XOAUTH2|OAUTHBEARER
//! <initial response>` → `235` → [`UpstreamEvent::LoggedIn`] with the bytes the
//! server sent after it.
//!
//! A `334 <base64 JSON>` after the initial response is the server's error challenge
//! (RFC 7628 / Google's XOAUTH2): we answer with the mechanism's dummy response (an
//! empty line for XOAUTH2, `AQ==` = ^A for OAUTHBEARER) and report the final reply:
//! `4xx` (Dovecot: `454 4.7.0` when it cannot check tokens) as
//! [`UpstreamAuthError::Unavailable`], `5xx` (`535 5.7.8`) as
//! [`UpstreamAuthError::TokenRejected`] with the JSON `status`. Like a tagged `BAD`
//! in IMAP, `500`–`504` (syntax and sequence errors) are protocol errors, not a
//! verdict on the token.
//!
//! The opening (greeting, EHLO, STARTTLS) and the reply reader are shared with
//! [`SmtpProbe`](probe::SmtpProbe) (see `client.rs`). Server lines, and whole multi-line
//! replies, are bounded by `max(limits.max_line, 64 KiB)`.

use self::client::{Client, Progress, protocol};
use super::encode;
use super::parse;
use super::types::{Reply, SmtpError, UpstreamEvent};
use crate::proto::{Interrupt, Limits, Mechanism, UpstreamAuthError, UpstreamLogin, sasl};

/// Smallest bound on a server line (and on a whole multi-line reply).
pub const UPSTREAM_MAX_LINE: usize = 64 * 1024;

/// The sans-I/O SMTP client side up to the end of AUTH.
#[derive(Debug)]
pub struct SmtpUpstream {
    login: UpstreamLogin,
    client: Client<UpstreamEvent>,
    auth: Auth,
}

#[derive(Debug)]
enum Auth {
    /// The opening is still running.
    NotYet,
    /// `AUTH <mechanism> <initial response>` is out.
    Sent,
    /// We answered the error challenge; its `status`, if any.
    ErrorAnswered { status: Option<String> },
}

impl SmtpUpstream {
    /// `ehlo_domain`: the name we give in EHLO (e.g. the client's, see
    /// [`SmtpDownstream::client_domain`](super::SmtpDownstream::client_domain)).
    pub fn new(login: UpstreamLogin, limits: Limits, ehlo_domain: &str) -> Self {
        SmtpUpstream {
            client: Client::new(login.tls, limits, ehlo_domain),
            login,
            auth: Auth::NotYet,
        }
    }

    /// Hands the machine bytes read from the server. Ignored once the machine closed.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.client.feed(bytes);
    }

    /// What happens next: the login result, or I/O (or an error) for the driver.
    // `next()` is the name of the machine interface (STYLE.md), not an Iterator.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<UpstreamEvent, Interrupt<SmtpError>> {
        loop {
            match self.client.poll()? {
                Progress::Event(ev) => return Ok(ev),
                Progress::Ready(extensions) => self.authenticate(&extensions),
                Progress::Reply(reply) => self.auth_reply(reply),
            }
        }
    }

    /// The STARTTLS handshake is done: forget the cleartext phase, EHLO again.
    pub fn tls_established(&mut self) {
        self.client.tls_established();
    }

    fn mechanism(&self) -> &'static str {
        match self.login.mechanism {
            Mechanism::Xoauth2 => "XOAUTH2",
            Mechanism::Oauthbearer => "OAUTHBEARER",
        }
    }

    fn authenticate(&mut self, extensions: &[String]) {
        let mechanism = self.mechanism();
        if !parse::offers_mechanism(extensions, mechanism) {
            return self
                .client
                .fail(UpstreamAuthError::MechanismUnavailable(mechanism).into());
        }
        let l = &self.login;
        let ir = match l.mechanism {
            Mechanism::Xoauth2 => sasl::xoauth2_initial_response(&l.username, &l.access_token),
            Mechanism::Oauthbearer => {
                sasl::oauthbearer_initial_response(&l.username, &l.host, l.port, &l.access_token)
            }
        };
        self.client.write(encode::auth(mechanism, &ir));
        self.auth = Auth::Sent;
    }

    fn auth_reply(&mut self, reply: Reply) {
        match (reply.code, &self.auth) {
            (235, _) => self.client.finish(|leftover| UpstreamEvent::LoggedIn {
                capabilities: None,
                leftover,
            }),
            (334, Auth::Sent) => {
                let challenge = reply.lines.first().map(String::as_bytes);
                let status = sasl::error_challenge_status(challenge.unwrap_or_default());
                self.client.write(match self.login.mechanism {
                    Mechanism::Xoauth2 => b"\r\n".to_vec(),
                    Mechanism::Oauthbearer => b"AQ==\r\n".to_vec(),
                });
                self.auth = Auth::ErrorAnswered { status };
            }
            (334, _) => self.client.fail(protocol("unexpected 334 challenge")),
            (400..=499, _) => self
                .client
                .fail(UpstreamAuthError::Unavailable(reply.text()).into()),
            (500..=504, _) => self
                .client
                .fail(protocol(format!("AUTH refused: {}", reply.text()))),
            (500..=599, auth) => {
                let status = match auth {
                    Auth::ErrorAnswered {
                        status: Some(status),
                    } => status.clone(),
                    _ => "unknown".to_owned(),
                };
                self.client
                    .fail(UpstreamAuthError::TokenRejected { status }.into());
            }
            _ => self.client.fail(protocol("unexpected reply to AUTH")),
        }
    }
}

mod client;
pub mod probe;

#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod probe_tests;
#[cfg(test)]
mod tests;
