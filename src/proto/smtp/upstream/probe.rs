//! The probe: a short client session that learns what the upstream offers, so the
//! downstream machine can repeat it in its EHLO reply before any login happened.
//!
//! greeting → `EHLO` → (`STARTTLS` → handshake → `EHLO` again) → `QUIT` → the server's
//! reply to QUIT → [`ProbeEvent::Extensions`] (the post-TLS list when STARTTLS is
//! required). The opening and the reply reader are the upstream machine's own
//! (`client.rs`), so both agree on what the server said.

use super::client::{Client, Progress};
use crate::proto::smtp::encode;
use crate::proto::smtp::types::{ProbeEvent, SmtpError};
use crate::proto::{Interrupt, Limits, UpstreamTls};

/// The sans-I/O SMTP extension probe.
#[derive(Debug)]
pub struct SmtpProbe {
    client: Client<ProbeEvent>,
    /// The extensions, once known; handed out after the server answered QUIT.
    extensions: Option<Vec<String>>,
}

impl SmtpProbe {
    pub fn new(tls: UpstreamTls, limits: Limits, ehlo_domain: &str) -> Self {
        SmtpProbe {
            client: Client::new(tls, limits, ehlo_domain),
            extensions: None,
        }
    }

    /// Hands the machine bytes read from the server. Ignored once the machine closed.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.client.feed(bytes);
    }

    /// What happens next: the extension list, or I/O (or an error) for the driver.
    // `next()` is the name of the machine interface (STYLE.md), not an Iterator.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<ProbeEvent, Interrupt<SmtpError>> {
        loop {
            match self.client.poll()? {
                Progress::Event(ev) => return Ok(ev),
                Progress::Ready(extensions) => {
                    self.client.write(encode::QUIT.to_vec());
                    self.extensions = Some(extensions);
                }
                // Whatever the server answers to QUIT (221, or 5xx from an odd one),
                // the extensions are known and the session is over.
                Progress::Reply(_) => {
                    let extensions = self.extensions.take().unwrap_or_default();
                    self.client.finish(|_| ProbeEvent::Extensions(extensions));
                }
            }
        }
    }

    /// The STARTTLS handshake is done: forget the cleartext phase, EHLO again.
    pub fn tls_established(&mut self) {
        self.client.tls_established();
    }
}

#[cfg(test)]
impl crate::proto::testing::Buffered for SmtpProbe {
    fn input(&self) -> &crate::proto::line::InputBuffer {
        self.client.input()
    }
}
