//! Drives the downstream POP3 machine with arbitrary bytes in arbitrary chunks,
//! answering logins arbitrarily. Checks: no panic, no endless loop, every write is
//! whole bounded lines (RFC 1939: 512 octets with CRLF), and no login gets through
//! before a required STLS.
#![no_main]

oauth_mail_proxy_fuzz::downstream_target! {
    new: |tls, u| oauth_mail_proxy::proto::pop3::Pop3Downstream::new(tls, oauth_mail_proxy_fuzz::LIMITS),
    accept: Some("TOP UIDL"),
    max_out_line: 512,
    crlf_lines: false,
    starttls: "STLS",
    on_login: |m| {},
}
