//! `login ACCOUNT`: runs the account's flow.

use tokio::io::AsyncBufRead;

use super::flows::{FlowError, LoginOptions};
use super::store::{TokenRecord, TokenStore};
use crate::config::{Account, Flow};

/// Logs `account` in with its configured flow and stores the tokens.
///
/// `manual_input` selects the manual mode of the authorization code flow (the
/// pasted redirect address is read from it); it is refused for other flows.
pub async fn login_account<R: AsyncBufRead + Unpin>(
    account: &Account,
    store: &TokenStore,
    http: &reqwest::Client,
    opts: LoginOptions,
    manual_input: Option<R>,
) -> Result<TokenRecord, FlowError> {
    let flow = account.oauth.flow;
    if manual_input.is_some() && flow != Flow::AuthorizationCode {
        return Err(FlowError::Config(format!(
            "--manual is for flow = \"authorization_code\"; account {} uses \"{}\"",
            account.username,
            flow.name()
        )));
    }
    match (flow, manual_input) {
        (Flow::AuthorizationCode, Some(input)) => {
            super::flows::login_authorization_code_manual(account, store, http, opts, input).await
        }
        (Flow::AuthorizationCode, None) => {
            super::flows::login_authorization_code(account, store, http, opts).await
        }
        (Flow::DeviceCode, _) => super::device::login_device_code(account, store, http, opts).await,
        (Flow::ClientCredentials, _) => {
            super::client_credentials::login_client_credentials(account, store, http).await
        }
        (Flow::JwtBearer, _) => super::jwt::login_jwt_bearer(account, store, http).await,
    }
}

/// Standard input as an async reader for [`login_account`]'s manual mode. A plain
/// thread does the blocking reads (unlike `tokio::io::stdin`, it never keeps the
/// runtime from shutting down when the login times out).
pub fn stdin_reader() -> tokio::io::BufReader<tokio::io::DuplexStream> {
    use std::io::Read;
    use tokio::io::AsyncWriteExt;
    let (reader, mut writer) = tokio::io::duplex(16 * 1024);
    let handle = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if handle.block_on(writer.write_all(&buf[..n])).is_err() {
                break;
            }
        }
    });
    tokio::io::BufReader::new(reader)
}
