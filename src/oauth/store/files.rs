//! File-system safety of the token store: private (0700) directories, file names that
//! hide the account name, bounded reads, atomic 0600 writes (temporary file, fsync,
//! rename, fsync of the directory), and I/O errors that name their file. The key file
//! ([`super::super::key`]) and the permission check ([`super::super::perms`]) use these
//! too.

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::StoreError;

/// Token files are small; anything bigger is not ours.
const MAX_FILE: u64 = 1 << 20;

pub(in crate::oauth) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `dir` (and parents) with mode 0700 if it is missing.
pub(in crate::oauth) fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create directory", dir))
}

pub(super) fn account_hash(account: &str) -> [u8; 32] {
    Sha256::digest(account.as_bytes()).into()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(in crate::oauth) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

pub(in crate::oauth) fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut buf = Vec::new();
    file.take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    if buf.len() as u64 > MAX_FILE {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: "file too large".into(),
        });
    }
    Ok(Some(buf))
}

/// Writes `data` to `path` (in `dir`) atomically: a 0600 temporary file in `dir`,
/// fsynced, renamed over `path`, then `dir` fsynced.
pub(super) fn write_atomic(dir: &Path, path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err("create temporary file in", dir))?;
    let tmp_path = tmp.path().to_path_buf();
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err("chmod", &tmp_path))?;
    tmp.write_all(data).map_err(io_err("write", &tmp_path))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("fsync", &tmp_path))?;
    tmp.persist(path)
        .map_err(|e| io_err("rename temporary file to", path)(e.error))?;
    sync_dir(dir)
}

pub(in crate::oauth) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}
