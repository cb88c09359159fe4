//! The system side of the Dovecot rig: `testkit::dovecot_sys` (shared with the
//! benchmark) plus the test rig's checks and hints, and short temporary directories.

use std::path::{Path, PathBuf};

use oauth_mail_proxy::testkit::dovecot_sys::{self, MailOwner};
use tempfile::TempDir;

pub const SETUP_HINT: &str = "run `scripts/setup-test-deps.sh` (as root, or with sudo) to install Dovecot 2.3 \
     (dovecot-imapd, dovecot-pop3d, dovecot-submissiond) and create the vmail user";

pub use oauth_mail_proxy::testkit::dovecot_sys::stop;

/// A temporary directory with a short path: unix socket paths under Dovecot's
/// `base_dir` must fit in 108 bytes.
pub fn temp_dir() -> TempDir {
    let base = std::env::temp_dir();
    let base = if base.as_os_str().len() > 40 {
        PathBuf::from("/tmp")
    } else {
        base
    };
    tempfile::Builder::new()
        .prefix("omp-dc")
        .tempdir_in(base)
        .expect("tempdir")
}

pub fn find_dovecot() -> PathBuf {
    let found = dovecot_sys::find_dovecot().unwrap_or_else(|| {
        panic!("Dovecot is not installed (no `dovecot` in PATH or /usr/sbin): {SETUP_HINT}")
    });
    // The protocol binaries come from separate packages.
    let libexec = Path::new("/usr/lib/dovecot");
    if libexec.is_dir() {
        for (exe, pkg) in [
            ("imap", "dovecot-imapd"),
            ("pop3", "dovecot-pop3d"),
            ("submission", "dovecot-submissiond"),
        ] {
            assert!(
                libexec.join(exe).is_file(),
                "{pkg} is not installed: {SETUP_HINT}"
            );
        }
    }
    found
}

/// `vmail` (created when missing) when running as root; else the current user.
pub fn mail_owner() -> MailOwner {
    dovecot_sys::mail_owner().unwrap_or_else(|e| panic!("{e}: {SETUP_HINT}"))
}
