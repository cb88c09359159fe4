//! The SASL decoders with arbitrary input: PLAIN (base64 and decoded), the two pieces
//! of LOGIN, and the `status` of an XOAUTH2/OAUTHBEARER error challenge. Checks: no
//! panic; whatever PLAIN decodes re-encodes to the same credentials; a challenge
//! status is at most 64 printable ASCII characters with no CR or LF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_mail_proxy::proto::sasl;
use secrecy::ExposeSecret;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = sasl::decode_plain(data) {
        let raw = format!(
            "{}\0{}\0{}",
            c.authzid.as_deref().unwrap_or(""),
            c.username,
            c.password.expose_secret()
        );
        let again = sasl::decode_plain(sasl::encode_base64(raw.as_bytes()).as_bytes())
            .expect("a decoded PLAIN message decodes again");
        assert_eq!(again.authzid, c.authzid);
        assert_eq!(again.username, c.username);
        assert_eq!(again.password.expose_secret(), c.password.expose_secret());
        assert!(!c.username.is_empty(), "empty user name accepted");
    }
    if let Ok(c) = sasl::parse_plain(data) {
        assert!(!c.username.is_empty(), "empty user name accepted");
        assert!(!c.username.contains('\0') && !c.password.expose_secret().contains('\0'));
    }
    if let Ok(name) = sasl::decode_login_username(data) {
        assert!(!name.is_empty(), "empty user name accepted");
    }
    let _ = sasl::decode_login_password(data);
    if let Some(status) = sasl::error_challenge_status(data) {
        assert!(!status.is_empty() && status.len() <= 64, "{status:?}");
        assert!(
            status.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "{status:?}"
        );
    }
    // The same bytes as a decoded challenge, encoded the way a server would send it.
    if let Some(status) = sasl::error_challenge_status(sasl::encode_base64(data).as_bytes()) {
        assert!(!status.is_empty() && status.len() <= 64, "{status:?}");
        assert!(
            status.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "{status:?}"
        );
    }
});
