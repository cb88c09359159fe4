//! Drives the client-role SMTP machines (the upstream login and the extension probe,
//! chosen by the first byte) with arbitrary server bytes in arbitrary chunks.
//! Checks: no panic, no endless loop, bounded writes, and a login or a probe result
//! only ever comes over TLS when STARTTLS is required.
#![no_main]

oauth_mail_proxy_fuzz::upstream_target! {
    new: |u| {
        let probe = u.arbitrary::<bool>().unwrap_or(false);
        let login = oauth_mail_proxy_fuzz::upstream_login(&mut u, "smtp.example.com", 587);
        (login.tls, oauth_mail_proxy_fuzz::SmtpClient::new(probe, login))
    },
    starttls: "STARTTLS",
    on_event: |()| {},
}
