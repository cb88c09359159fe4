//! [`AuthServerConfig`]: the client credentials, token lifetime and default user an
//! [`AuthServer`](super::AuthServer) starts with.

use std::fmt;
use std::time::Duration;

/// Settings of an [`AuthServer`](super::AuthServer). `Debug` redacts the secrets.
#[derive(Clone)]
pub struct AuthServerConfig {
    /// The one OAuth client allowed at `/authorize` and `/token`.
    pub client_id: String,
    /// Its secret; empty makes it a public client (`client_id` alone suffices).
    pub client_secret: String,
    /// The client allowed to call `/introspect` (Dovecot's credentials).
    pub introspect_client_id: String,
    pub introspect_client_secret: String,
    /// Lifetime of newly issued access tokens.
    pub token_lifetime: Duration,
    /// User approved at `/authorize` when the request has no `login_hint`.
    pub default_user: String,
    /// Replace the refresh token on each refresh; the old one then stops working.
    pub rotate_refresh_tokens: bool,
}

impl AuthServerConfig {
    /// Fixed client ids, random secrets, one-hour tokens, user `alice@example.com`,
    /// refresh-token rotation on.
    pub fn generated() -> Self {
        Self {
            client_id: "oauth-mail-proxy".to_owned(),
            client_secret: crate::secret::random_token(24),
            introspect_client_id: "dovecot".to_owned(),
            introspect_client_secret: crate::secret::random_token(24),
            token_lifetime: Duration::from_secs(3600),
            default_user: "alice@example.com".to_owned(),
            rotate_refresh_tokens: true,
        }
    }
}

impl fmt::Debug for AuthServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthServerConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("introspect_client_id", &self.introspect_client_id)
            .field("introspect_client_secret", &"[REDACTED]")
            .field("token_lifetime", &self.token_lifetime)
            .field("default_user", &self.default_user)
            .field("rotate_refresh_tokens", &self.rotate_refresh_tokens)
            .finish()
    }
}
