//! A template account's `password_file`: one `user@domain:$argon2id$...` line per user
//! of the domain.

use super::*;

/// Largest password file accepted.
const MAX_PASSWORD_FILE: u64 = 16 << 20;

/// Reads and validates a template's password file: `user@domain:$argon2id$...` lines,
/// blank lines and `#` comments; errors name the password file and its line.
pub(super) fn load(cx: &Ctx, f: &Spanned<String>, domain: String) -> Result<Template, ConfigError> {
    let path = cx.path(f.get_ref());
    let file = path.display().to_string();
    let read = std::fs::metadata(&path).and_then(|m| {
        if m.len() > MAX_PASSWORD_FILE {
            Err(std::io::Error::other("file too large"))
        } else {
            std::fs::read_to_string(&path)
        }
    });
    let text = read.map_err(|e| {
        cx.invalid(
            f,
            "account.password_file",
            format!("cannot read {file}: {e}"),
        )
    })?;
    let from = format!(
        " (password_file of the account at {}:{})",
        cx.file,
        cx.line(f.span())
    );
    let bad = |line: usize, message: String| ConfigError::Invalid {
        file: file.clone(),
        line,
        key: "password_file".into(),
        message: message + &from,
    };
    let mut users = std::collections::BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            return Err(bad(n, "expected `user@domain:$argon2id$...`".into()));
        };
        let user = user.trim();
        let ok_domain = user
            .rsplit_once('@')
            .is_some_and(|(local, d)| !local.is_empty() && d.eq_ignore_ascii_case(&domain));
        if !ok_domain
            || user.contains('*')
            || user.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad(
                n,
                format!("user name must be an address `name@{domain}` without spaces or `*`"),
            ));
        }
        crate::accounts::check_phc(hash.trim()).map_err(|e| {
            bad(
                n,
                format!("{user}: {e}; create one with `oauth-mail-proxy hash-password`"),
            )
        })?;
        if users
            .insert(user.to_string(), hash.trim().to_string())
            .is_some()
        {
            return Err(bad(n, format!("duplicate user {user}")));
        }
    }
    Ok(Template {
        domain,
        password_file: path,
        users: std::sync::Arc::new(users),
    })
}
