//! Authorization codes: what `/authorize` approved, kept until the client exchanges
//! the single-use code for the family's first tokens (RFC 6749 §4.1.2, with PKCE).

use std::time::{Duration, Instant};

use super::{Issued, PendingCode, Store, TOKEN_BYTES, key};
use crate::authserver::error::OAuthError;
use crate::authserver::params::verify_pkce;
use crate::secret::random_token;

/// How long an authorization code may wait for its exchange.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// What `/authorize` approved, waiting for the code exchange.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub user: String,
    pub scope: String,
}

impl Store {
    /// Stores an approved authorization request and returns its single-use code.
    pub(crate) fn new_code(&mut self, grant: CodeGrant) -> String {
        self.purge();
        let code = random_token(TOKEN_BYTES);
        let expires = Instant::now() + CODE_LIFETIME;
        self.codes
            .insert(key(&code), PendingCode { grant, expires });
        code
    }

    /// Exchanges a code. The code is consumed by any attempt, successful or not; a
    /// replay of an exchanged code revokes every token issued from it.
    pub(crate) fn redeem_code(
        &mut self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Issued, OAuthError> {
        let k = key(code);
        if let Some((_, family)) = self.redeemed.remove(&k) {
            self.revoke_family(family);
            return Err(OAuthError::InvalidGrant("authorization code already used"));
        }
        let pending = self
            .codes
            .remove(&k)
            .ok_or(OAuthError::InvalidGrant("unknown authorization code"))?;
        let g = pending.grant;
        if pending.expires <= Instant::now() {
            return Err(OAuthError::InvalidGrant("authorization code expired"));
        }
        if g.client_id != client_id {
            return Err(OAuthError::InvalidGrant(
                "code was issued to another client",
            ));
        }
        if g.redirect_uri != redirect_uri {
            return Err(OAuthError::InvalidGrant("redirect_uri does not match"));
        }
        if !verify_pkce(verifier, &g.challenge) {
            return Err(OAuthError::InvalidGrant("PKCE verification failed"));
        }
        let family = self.new_family();
        self.redeemed.insert(k, (pending.expires, family));
        Ok(self.issue(&g.user, client_id, &g.scope, family, true))
    }
}
