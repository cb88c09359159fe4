//! What a test sets and observes on a running [`AuthServer`]: device-flow timing and
//! decisions, forced denials and `/token` faults, token lifetimes, the JWT bearer
//! key, revocations and minted tokens without HTTP, and the counters and logs of
//! what clients asked for.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use super::handlers::DEFAULT_SCOPE;
use super::{AuthServer, TokenFault, jwt};

impl AuthServer {
    /// Successful (client-authenticated) requests to `/revoke`.
    pub fn revocations(&self) -> u64 {
        self.shared.revocations.load(Ordering::SeqCst)
    }

    /// Polling interval announced by device authorizations started from now on
    /// (whole seconds; 0 is allowed, for tests).
    pub fn set_device_interval(&self, d: Duration) {
        self.shared.devices().set_interval(d);
    }

    /// Lifetime of device codes issued from now on (default 10 minutes).
    pub fn set_device_lifetime(&self, d: Duration) {
        self.shared.devices().set_lifetime(d);
    }

    /// The next `n` device-code polls are answered `slow_down`.
    pub fn force_device_slow_down(&self, n: u32) {
        self.shared.devices().force_slow_downs(n);
    }

    /// `(polls, slow_downs)`: device-code token requests, and how many of them were
    /// answered `slow_down`.
    pub fn device_polls(&self) -> (u64, u64) {
        self.shared.devices().counts()
    }

    /// Approves a pending device authorization as `user`; false if `user_code` is
    /// unknown, expired or already decided.
    pub fn approve_device(&self, user_code: &str, user: &str) -> bool {
        self.shared.devices().decide(user_code, Some(user))
    }

    /// Denies a pending device authorization (its polls get `access_denied`).
    pub fn deny_device(&self, user_code: &str) -> bool {
        self.shared.devices().decide(user_code, None)
    }

    /// The query parameters of every `/authorize` request so far, oldest first
    /// (`login_hint`, `prompt`, ...: none of them secret).
    pub fn authorize_requests(&self) -> Vec<Vec<(String, String)>> {
        self.shared
            .authorize_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Successful token-endpoint grants of `grant_type` ("authorization_code",
    /// "refresh_token", "client_credentials", "device_code").
    pub fn grants(&self, grant_type: &str) -> u64 {
        let g = self
            .shared
            .grants
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        g.get(grant_type).copied().unwrap_or(0)
    }

    /// Every POST to `/token`, successful or not.
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// Enables the JWT bearer grant (RFC 7523): assertions must be RS256-signed by
    /// the key whose public half is `pem` ("BEGIN PUBLIC KEY"), issued by `issuer`, for this server's token URL. Tokens issued
    /// introspect as the assertion's `sub`.
    pub fn set_jwt_public_key(&self, pem: &str, issuer: &str) -> Result<(), String> {
        use rustls_pki_types::pem::{PemObject, SectionKind};
        let (kind, der) = <(SectionKind, Vec<u8>)>::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("not a PEM public key: {e}"))?;
        if kind != SectionKind::PublicKey {
            return Err("expected a PUBLIC KEY PEM".into());
        }
        let public_key =
            jwt::rsa_public_key(&der).ok_or_else(|| "not an RSA public key".to_string())?;
        let verifier = jwt::JwtVerifier {
            public_key,
            audience: self.token_url(),
            issuer: issuer.to_owned(),
        };
        let mut slot = self
            .shared
            .jwt
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *slot = Some(verifier);
        Ok(())
    }

    /// Lifetime of access tokens issued from now on.
    pub fn set_token_lifetime(&self, d: Duration) {
        self.shared.store().set_lifetime(d);
    }

    /// Announce `refresh_token_expires_in` (this lifetime, not enforced) with every
    /// refresh token issued from now on (as Microsoft does for SPAs); `None`: omit it.
    pub fn set_refresh_token_lifetime(&self, d: Option<Duration>) {
        self.shared.store().set_refresh_lifetime(d);
    }

    /// While set, `/authorize` redirects with `error=access_denied` and
    /// `/device/verify` denies the code it is given.
    pub fn set_deny(&self, deny: bool) {
        self.shared.deny.store(deny, Ordering::SeqCst);
    }

    /// Makes every `POST /token` from now on fail as `fault` says (still counted in
    /// [`AuthServer::token_requests`]); `None` makes it answer normally again. Other
    /// endpoints are unaffected.
    pub fn set_token_fault(&self, fault: Option<TokenFault>) {
        *self
            .shared
            .token_fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Invalidates every refresh and access token of `user`.
    pub fn revoke_user(&self, user: &str) {
        self.shared.store().revoke_user(user);
        tracing::info!(user, "tokens revoked");
    }

    /// Issues `(access_token, refresh_token)` for `user` to the configured client,
    /// without any HTTP exchange (not counted in [`AuthServer::grants`]).
    pub fn mint_tokens(&self, user: &str) -> (String, String) {
        let issued =
            self.shared
                .store()
                .issue_new(user, &self.shared.cfg.client_id, DEFAULT_SCOPE, true);
        let refresh = issued
            .refresh_token
            .expect("issue_new with refresh returns one");
        (issued.access_token, refresh)
    }

    /// A function telling whether an access token is active for a user, as the
    /// introspection endpoint would, without HTTP: for in-process test upstreams.
    pub fn validator(&self) -> crate::testkit::TokenValidator {
        let shared = self.shared.clone();
        Arc::new(move |user: &str, token: &str| {
            shared
                .store()
                .introspect(token)
                .is_some_and(|t| t.user.eq_ignore_ascii_case(user))
        })
    }
}
