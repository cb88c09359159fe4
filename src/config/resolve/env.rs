//! `*_env` keys: a secret read from an environment variable at load time instead of
//! being written in the file (`client_secret_env`, `password_hash_env`,
//! `admin_password_hash_env`). The value replaces its twin key before validation, so
//! it is checked exactly like a value written in the file.

use super::*;

/// Resolves one `KEY` / `KEY_env` pair in place: with `KEY_env = "NAME"`, `KEY`
/// becomes the value of `$NAME` (spanned at the `_env` key, so later errors name
/// its line). Both set, a missing variable or an empty name is an error.
fn pair(
    cx: &Ctx,
    value: &mut Option<Spanned<String>>,
    env: &Option<Spanned<String>>,
    key: &str,
) -> Result<(), ConfigError> {
    let Some(name) = env else { return Ok(()) };
    let env_key = format!("{key}_env");
    if value.is_some() {
        return Err(cx.invalid(
            name,
            &env_key,
            format!("set either `{key}` or `{key}_env`, not both"),
        ));
    }
    let var = name.get_ref().trim();
    if var.is_empty() || var.contains('=') || var.contains('\0') {
        return Err(cx.invalid(name, &env_key, "expected an environment variable name"));
    }
    match std::env::var(var) {
        Ok(v) => {
            *value = Some(Spanned::new(name.span(), v));
            Ok(())
        }
        Err(std::env::VarError::NotPresent) => Err(cx.invalid(
            name,
            &env_key,
            format!("environment variable {var} is not set"),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(cx.invalid(
            name,
            &env_key,
            format!("environment variable {var} is not valid UTF-8"),
        )),
    }
}

/// Applies every `_env` key of the file.
pub(super) fn apply(cx: &Ctx, raw: &mut raw::File) -> Result<(), ConfigError> {
    if let Some(p) = raw.proxy.as_mut() {
        pair(
            cx,
            &mut p.admin_password_hash,
            &p.admin_password_hash_env,
            "proxy.admin_password_hash",
        )?;
    }
    for a in &mut raw.account {
        pair(
            cx,
            &mut a.password_hash,
            &a.password_hash_env,
            "account.password_hash",
        )?;
        pair(
            cx,
            &mut a.client_secret,
            &a.client_secret_env,
            "account.client_secret",
        )?;
    }
    Ok(())
}
