//! Scripts of a well-behaved upstream for each protocol and TLS mode, up to a
//! successful XOAUTH2 login, and the pieces the misbehaving scripts are made of.
//!
//! Before TLS the fake advertises the marker [`PRE_TLS`]; after TLS (or without
//! STARTTLS) it advertises [`POST_TLS`]. Nothing said before TLS may reach the client.

use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;

use super::{Step, send};

/// A capability only advertised in cleartext, before STARTTLS.
pub const PRE_TLS: &str = "X-PRE-TLS";
/// A capability only advertised after TLS is up.
pub const POST_TLS: &str = "X-POST-TLS";

/// Which upstream protocol a script speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Imap,
    Pop3,
    Smtp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Imap => "imap",
            Proto::Pop3 => "pop3",
            Proto::Smtp => "smtp",
        }
    }

    /// The greeting of a server that will offer STARTTLS (IMAP: with capabilities,
    /// including [`PRE_TLS`]; `starttls: false` leaves STARTTLS out of them).
    pub fn greeting(self, starttls: bool) -> Step {
        let stls = if starttls { " STARTTLS" } else { "" };
        match self {
            Proto::Imap => send(&format!(
                "* OK [CAPABILITY IMAP4rev1{stls} LOGINDISABLED {PRE_TLS}] fake ready\r\n"
            )),
            Proto::Pop3 => send("+OK fake ready\r\n"),
            Proto::Smtp => send("220 fake.example ESMTP ready\r\n"),
        }
    }

    /// The cleartext capability exchange (after the greeting), offering STARTTLS or
    /// not. IMAP's greeting already carried them: nothing.
    pub fn capabilities_before_tls(self, starttls: bool) -> Vec<Step> {
        match self {
            Proto::Imap => vec![],
            Proto::Pop3 => vec![
                Step::Expect("CAPA"),
                send(&format!(
                    "+OK\r\n{}{PRE_TLS}\r\nSASL XOAUTH2\r\n.\r\n",
                    if starttls { "STLS\r\n" } else { "" }
                )),
            ],
            Proto::Smtp => vec![
                Step::Expect("EHLO"),
                send(&format!(
                    "250-fake.example\r\n{}250-AUTH XOAUTH2\r\n250 {PRE_TLS}\r\n",
                    if starttls { "250-STARTTLS\r\n" } else { "" }
                )),
            ],
        }
    }

    /// The client's STARTTLS command as the fake expects it.
    pub fn starttls_command(self) -> &'static str {
        match self {
            Proto::Imap => "A1 STARTTLS",
            Proto::Pop3 => "STLS",
            Proto::Smtp => "STARTTLS",
        }
    }

    /// The server's positive answer to STARTTLS.
    pub fn starttls_ok(self) -> &'static str {
        match self {
            Proto::Imap => "A1 OK begin TLS\r\n",
            Proto::Pop3 => "+OK begin TLS\r\n",
            Proto::Smtp => "220 2.0.0 go ahead\r\n",
        }
    }

    /// The server's refusal of STARTTLS.
    pub fn starttls_refused(self) -> &'static str {
        match self {
            Proto::Imap => "A1 NO STARTTLS not now\r\n",
            Proto::Pop3 => "-ERR STLS not now\r\n",
            Proto::Smtp => "454 4.7.0 TLS not available\r\n",
        }
    }

    /// From the capability request after TLS (or the first one without STARTTLS) to
    /// the successful login. `tag`: the IMAP tag number of the capability request.
    pub fn login_after_tls(self, tag: u32) -> Vec<Step> {
        match self {
            Proto::Imap => vec![
                Step::Expect(leak(format!("A{tag} CAPABILITY"))),
                send(&format!(
                    "* CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 {POST_TLS}\r\nA{tag} OK done\r\n"
                )),
                Step::Expect(leak(format!("A{} AUTHENTICATE XOAUTH2 ", tag + 1))),
                send(&format!(
                    "A{} OK [CAPABILITY IMAP4rev1 {POST_TLS}] logged in\r\n",
                    tag + 1
                )),
            ],
            Proto::Pop3 => vec![
                Step::Expect("CAPA"),
                send(&format!("+OK\r\n{POST_TLS}\r\nSASL XOAUTH2\r\n.\r\n")),
                Step::Expect("AUTH XOAUTH2 "),
                send("+OK logged in\r\n"),
            ],
            // The same script serves the proxy's EHLO probe (which ends with QUIT)
            // and its logins (AUTH).
            Proto::Smtp => vec![
                Step::Expect("EHLO"),
                send(&format!(
                    "250-fake.example\r\n250-AUTH XOAUTH2\r\n250-{POST_TLS}\r\n250 8BITMIME\r\n"
                )),
                Step::ExpectAny,
                send("235 2.7.0 accepted\r\n"),
            ],
        }
    }

    /// A well-behaved server with STARTTLS (presenting `cfg`'s certificate).
    pub fn starttls_login(self, cfg: &Arc<ServerConfig>) -> Vec<Step> {
        let mut s = vec![self.greeting(true)];
        s.extend(self.capabilities_before_tls(true));
        s.push(Step::Expect(self.starttls_command()));
        s.push(send(self.starttls_ok()));
        s.push(Step::StartTls(cfg.clone()));
        s.extend(self.login_after_tls(2));
        s
    }

    /// A well-behaved server over implicit TLS (`cfg`), or plain TCP without one.
    pub fn direct_login(self, cfg: Option<&Arc<ServerConfig>>) -> Vec<Step> {
        let mut s: Vec<Step> = cfg.map(|c| Step::StartTls(c.clone())).into_iter().collect();
        s.push(match self {
            Proto::Imap => send("* OK fake ready\r\n"),
            _ => self.greeting(false),
        });
        s.extend(self.login_after_tls(1));
        s
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}
