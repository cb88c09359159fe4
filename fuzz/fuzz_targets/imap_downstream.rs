//! Drives the downstream IMAP machine with arbitrary bytes in arbitrary chunks,
//! answering logins arbitrarily. Checks: no panic, no endless loop, every line we
//! write stays bounded (a tag, under max_line, plus fixed text), and no login gets
//! through before a required STARTTLS.
#![no_main]

oauth_mail_proxy_fuzz::downstream_target! {
    new: |tls, u| oauth_mail_proxy::proto::imap::ImapDownstream::new(tls, oauth_mail_proxy_fuzz::LIMITS),
    accept: Some("IMAP4rev1 IDLE"),
    // the LF counts
    max_out_line: oauth_mail_proxy_fuzz::LIMITS.max_line + 512 + 1,
    crlf_lines: false,
    starttls: "STARTTLS",
    on_login: |m| {},
}
