//! The export passphrase: `$OAUTH_MAIL_PROXY_PASSPHRASE`, else asked on the terminal
//! (without echo). Never printed or logged.

use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::OpsError;

pub const PASSPHRASE_ENV: &str = "OAUTH_MAIL_PROXY_PASSPHRASE";
/// Shortest passphrase accepted for a new export.
pub const MIN_LEN: usize = 8;

/// The passphrase; `new` (export) asks twice and enforces [`MIN_LEN`].
pub fn get(new: bool) -> Result<SecretString, OpsError> {
    let p = match std::env::var(PASSPHRASE_ENV) {
        Ok(v) if !v.is_empty() => SecretString::from(v),
        _ => {
            if !std::io::stdin().is_terminal() {
                return Err(OpsError::Passphrase(format!(
                    "no passphrase: set {PASSPHRASE_ENV} or run on a terminal"
                )));
            }
            let p = ask("Passphrase: ")?;
            if new {
                let again = ask("Passphrase again: ")?;
                if !crate::secret::ct_eq(
                    p.expose_secret().as_bytes(),
                    again.expose_secret().as_bytes(),
                ) {
                    return Err(OpsError::Passphrase("the passphrases differ".into()));
                }
            }
            p
        }
    };
    if new && p.expose_secret().chars().count() < MIN_LEN {
        return Err(OpsError::Passphrase(format!(
            "the passphrase must have at least {MIN_LEN} characters"
        )));
    }
    if p.expose_secret().is_empty() {
        return Err(OpsError::Passphrase("empty passphrase".into()));
    }
    Ok(p)
}

/// An account's local password for `login` of an `encrypt_with = "client-password"`
/// account: asked on the terminal without echo, else one line of standard input.
pub fn local_password(account: &str) -> Result<SecretString, OpsError> {
    let p = if std::io::stdin().is_terminal() {
        ask(&format!("Local password of {account}: "))?
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| OpsError::Passphrase(format!("cannot read the password: {e}")))?;
        SecretString::from(line.trim_end_matches(['\r', '\n']).to_string())
    };
    if p.expose_secret().is_empty() {
        return Err(OpsError::Passphrase("empty password".into()));
    }
    Ok(p)
}

fn stty(arg: &str) -> bool {
    Command::new("stty")
        .arg(arg)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Prompts on stderr and reads one line from the terminal with echo off.
fn ask(prompt: &str) -> Result<SecretString, OpsError> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let hidden = stty("-echo");
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        stty("echo");
        eprintln!();
    }
    read.map_err(|e| OpsError::Passphrase(format!("cannot read the passphrase: {e}")))?;
    Ok(SecretString::from(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}
