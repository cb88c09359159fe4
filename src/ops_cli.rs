//! The account-operation commands (`status`, `verify`, `logout`, `export`, `import`,
//! `import-token`): read the config and the store, call `oauth_mail_proxy::ops`, print.

use std::io::{BufRead, IsTerminal, Read};

use anyhow::{Context, Result, bail};
use secrecy::SecretString;
use zeroize::Zeroizing;

use oauth_mail_proxy::cli::Command;
use oauth_mail_proxy::config::Config;
use oauth_mail_proxy::oauth::{TokenManager, TokenStore, client::http_client};
use oauth_mail_proxy::ops::{self, export, logout, notify, passphrase, status, verify};

/// Name of the file `import` writes the missing `[[account]]` blocks to (in
/// `state_dir`, mode 0600: they hold client secrets).
const IMPORTED_ACCOUNTS: &str = "imported-accounts.toml";

pub async fn run(command: &Command, config: &Config) -> Result<()> {
    let store = TokenStore::open(&config.proxy.state_dir)?;
    match command {
        Command::Status { account, json } => {
            let list = status::collect(config, &store, account.as_deref())?;
            if *json {
                println!("{}", status::to_json(&list));
            } else {
                print!("{}", status::table(&list));
            }
            Ok(())
        }
        Command::Verify { account, send_test } => {
            let tokens = TokenManager::new(store, http_client()?, config.proxy.refresh_margin)
                .with_refresh_token_warning(config.proxy.refresh_token_warning);
            let (tokens, notifier) = notify::attach(tokens, &config.proxy);
            let opts = verify::VerifyOptions {
                send_test: send_test.clone(),
            };
            let reports = verify::verify(config, &tokens, account.as_deref(), &opts).await;
            if let Some(n) = notifier {
                n.flush().await;
            }
            let reports = reports?;
            let failed: Vec<&str> = reports
                .iter()
                .filter(|r| !r.passed())
                .map(|r| r.account.as_str())
                .collect();
            for r in &reports {
                print!("{}", r.render());
            }
            if !failed.is_empty() {
                bail!("verification failed for {}", failed.join(", "));
            }
            Ok(())
        }
        Command::Logout { account } => {
            let acc = one_account(config, account)?;
            let report = logout::logout(&acc, &store, &http_client()?).await?;
            for line in &report.done {
                println!("{line}");
            }
            if report.revocation_failed {
                bail!("the tokens were deleted locally, but revoking them at the provider failed");
            }
            Ok(())
        }
        Command::Export { file } => {
            let pass = passphrase::get(true)?;
            let what = export::export(config, &store, file, &pass)?;
            println!("{what}");
            Ok(())
        }
        Command::Import { file } => {
            let pass = passphrase::get(false)?;
            let payload = export::read(file, &pass)?;
            let report = export::import(config, &store, &payload)?;
            if report.tokens.is_empty() {
                println!("no token records in the export");
            }
            for line in &report.tokens {
                println!("{line}");
            }
            for name in &report.differing_accounts {
                println!(
                    "{name}: settings in {} differ from the export; kept as they are",
                    config.file.display()
                );
            }
            if !report.missing_accounts.is_empty() {
                let path = config.proxy.state_dir.join(IMPORTED_ACCOUNTS);
                let full: String = report
                    .missing_accounts
                    .iter()
                    .map(|a| a.toml.clone() + "\n")
                    .collect();
                oauth_mail_proxy::private_file::write_private_file(&path, full.as_bytes())
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!(
                    "\n{} account(s) of the export are not in {}; their [[account]] blocks (with client secrets) are in {} — add them to the config:\n",
                    report.missing_accounts.len(),
                    config.file.display(),
                    path.display()
                );
                for a in &report.missing_accounts {
                    println!(
                        "{}",
                        export::redact_secret(&a.toml, &path.display().to_string())
                    );
                }
            }
            Ok(())
        }
        Command::ImportToken { account } => {
            let acc = one_account(config, account)?;
            let token = read_token_line()?;
            export::import_token(&acc, &store, token)?;
            println!(
                "{account}: refresh token stored; the next use refreshes it (check with `oauth-mail-proxy verify {account}`)"
            );
            Ok(())
        }
        _ => unreachable!("not an account operation"),
    }
}

fn one_account(config: &Config, account: &str) -> Result<oauth_mail_proxy::config::Account> {
    Ok(ops::accounts(config, Some(account))?.remove(0))
}

/// One line from stdin, at most [`export::MAX_TOKEN_LINE`] bytes.
fn read_token_line() -> Result<SecretString> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Paste the refresh token, then Enter:");
    }
    let mut line = Zeroizing::new(String::new());
    let limit = export::MAX_TOKEN_LINE as u64 + 2;
    stdin
        .lock()
        .take(limit)
        .read_line(&mut line)
        .context("cannot read the refresh token from stdin")?;
    if line.len() as u64 >= limit && !line.ends_with('\n') {
        bail!(
            "the refresh token is longer than {} bytes",
            export::MAX_TOKEN_LINE
        );
    }
    Ok(SecretString::from(line.trim().to_string()))
}
