//! Drives the downstream SMTP machine with arbitrary bytes in arbitrary chunks,
//! answering logins arbitrarily. Checks: no panic, no endless loop, every reply line
//! we write is complete and within RFC 5321's 512 octets, no login before EHLO, and
//! no login before a required STARTTLS.
#![no_main]

oauth_mail_proxy_fuzz::downstream_target! {
    new: |tls, u| {
        // The upstream's extensions are probe output: arbitrary too.
        let extensions: Vec<String> = u.arbitrary().unwrap_or_default();
        let limits = oauth_mail_proxy_fuzz::LIMITS;
        oauth_mail_proxy::proto::smtp::SmtpDownstream::new(tls, limits, "mx.example", extensions)
    },
    accept: None,
    max_out_line: 512,
    crlf_lines: true,
    starttls: "STARTTLS",
    on_login: |m| {
        assert!(m.client_domain().is_some(), "login before EHLO");
    },
}
