//! Drives the upstream IMAP machine with arbitrary server bytes in arbitrary chunks.
//! Checks: no panic, no endless loop, bounded writes, and a login only ever completes
//! over TLS when STARTTLS is required.
#![no_main]

oauth_mail_proxy_fuzz::upstream_target! {
    new: |u| {
        let login = oauth_mail_proxy_fuzz::upstream_login(&mut u, "imap.example.com", 993);
        let limits = oauth_mail_proxy::proto::Limits::default();
        (login.tls, oauth_mail_proxy::proto::imap::ImapUpstream::new(login, limits))
    },
    starttls: "STARTTLS",
    on_event: |_| {},
}
