//! OAuth 2.0 tokens: the encrypted store, refresh, and the interactive login.
//!
//! * [`store`] keeps one encrypted record per account on disk;
//! * [`client`] builds the oauth2 client and the shared HTTP client;
//! * [`outcome`] classifies a token-endpoint answer (refreshed / transient / re-consent);
//! * [`flows`] runs the authorization-code + PKCE login with a loopback redirect (or a
//!   pasted redirect address), [`device`] the device-code login (RFC 8628),
//!   [`client_credentials`] the app-only grant; [`login::login_account`] picks one;
//! * [`TokenManager`] (`manager`) hands out access tokens, refreshing each account's
//!   token at most once at a time (`single_flight`), with the store as the source of
//!   truth; its token requests are in `fetch`, and after a transient failure an account
//!   backs off (`backoff`: capped doubling, `Retry-After` honoured) with its stored
//!   tokens kept.
//! * `perms` is the check `serve` runs on the store's file permissions; [`TokenStatus`]
//!   (`status`) the secret-free summary for `status` and the admin endpoint.
//!
//! This file is the module map and the re-exports of the public types.

mod backoff;
pub mod client;
pub mod client_credentials;
pub mod device;
mod fetch;
pub mod flows;
pub mod jwt;
mod key;
pub mod login;
mod loopback;
mod manager;
pub mod notify;
pub mod outcome;
mod perms;
mod single_flight;
mod status;
pub mod store;

pub use backoff::{DEFAULT_RETRY_BACKOFF, MAX_RETRY_BACKOFF};
pub use device::{DevicePrompt, DeviceSink};
pub use flows::{
    FlowError, LoginOptions, UrlSink, login_authorization_code, login_authorization_code_manual,
};
pub use login::login_account;
pub use manager::{DEFAULT_REFRESH_TOKEN_WARNING, REFRESH_TIMEOUT, TokenError, TokenManager};
pub use outcome::RefreshOutcome;
pub use status::TokenStatus;
pub use store::{StoreError, TokenKey, TokenRecord, TokenStore};

#[cfg(test)]
#[path = "debug_tests.rs"]
mod debug_tests;
