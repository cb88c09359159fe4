//! The permission check `serve` runs on the token store before it starts: the state
//! directory, the token directory, the key file and every token file must be private
//! to their owner (no group or other permission bits), or the proxy refuses to start
//! with the file and the `chmod` that fixes it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::store::{KEY_FILE, StoreError, TOKENS_DIR, io_err, unhex32};

/// Checks `state_dir`, its token directory, its key file (when there is one) and the
/// token files in it. The first file with group/other bits is the error.
pub fn check_private(state_dir: &Path) -> Result<(), StoreError> {
    check(state_dir, true)?;
    let tokens = state_dir.join(TOKENS_DIR);
    if tokens.exists() {
        check(&tokens, true)?;
        for entry in fs::read_dir(&tokens).map_err(io_err("list", &tokens))? {
            let entry = entry.map_err(io_err("list", &tokens))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if unhex32(&name).is_some() || name.starts_with(".tmp-") {
                check(&entry.path(), false)?;
            }
        }
    }
    let key = state_dir.join(KEY_FILE);
    if key.exists() {
        check(&key, false)?;
    }
    Ok(())
}

fn check(path: &Path, dir: bool) -> Result<(), StoreError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        // Removed meanwhile (a temporary file): nothing to check.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("stat", path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(StoreError::Insecure {
        path: path.to_path_buf(),
        mode,
        fix: if dir { "700" } else { "600" },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{TokenKey, TokenRecord, TokenStore};

    fn chmod(p: &Path, mode: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn group_or_world_bits_are_refused_naming_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let store = TokenStore::open_with_key(&state, TokenKey::generate()).unwrap();
        let rec = TokenRecord {
            account: "a".into(),
            access_token: "t".into(),
            refresh_token: None,
            expires_at: None,
            scopes: vec![],
            obtained_at: 0,
            last_refresh: None,
            needs_login: None,
            refresh_expires_at: None,
        };
        store.save("a", &rec).unwrap();
        fs::write(state.join(KEY_FILE), "k").unwrap();
        chmod(&state.join(KEY_FILE), 0o600);
        check_private(&state).unwrap();

        let file = store.path_for("a");
        let key = state.join(KEY_FILE);
        let tokens = state.join(TOKENS_DIR);
        let cases: [(&Path, u32, u32, &str); 4] = [
            (&file, 0o640, 0o600, "chmod 600"),
            (&key, 0o604, 0o600, "chmod 600"),
            (&tokens, 0o750, 0o700, "chmod 700"),
            (&state, 0o705, 0o700, "chmod 700"),
        ];
        for (path, bad, good, fix) in cases {
            chmod(path, bad);
            let e = check_private(&state).unwrap_err().to_string();
            assert!(
                e.contains(&path.display().to_string()) && e.contains(fix),
                "{e}"
            );
            chmod(path, good);
        }
        check_private(&state).unwrap();
    }
}
