//! Drives the upstream POP3 machine with arbitrary server bytes in arbitrary chunks.
//! Checks: no panic, no endless loop, bounded writes, no capabilities from a POP3
//! login, and a login only ever completes over TLS when STLS is required.
#![no_main]

use oauth_mail_proxy::proto::UpstreamEvent;

oauth_mail_proxy_fuzz::upstream_target! {
    new: |u| {
        let login = oauth_mail_proxy_fuzz::upstream_login(&mut u, "pop.example.com", 995);
        let limits = oauth_mail_proxy::proto::Limits::default();
        (login.tls, oauth_mail_proxy::proto::pop3::Pop3Upstream::new(login, limits))
    },
    starttls: "STLS",
    on_event: |UpstreamEvent::LoggedIn { capabilities, .. }| {
        assert!(capabilities.is_none());
    },
}
