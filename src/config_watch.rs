//! The config file watch (`[proxy] watch_config`, every 2 s by default): polls the
//! config file and the template accounts' password files, and asks for a reload (the
//! same as SIGHUP) when one of them changed and then stayed the same for one more
//! poll, so a file still being written is read once it is complete.
//!
//! Polling `stat` is cheap (a few files every few seconds), needs no inotify and
//! follows symbolic links, which is how a Kubernetes ConfigMap volume swaps in a new
//! version: the link moves to a new file, so the device/inode pair changes even when
//! the size and modification time happen to be equal.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// What `stat` says of a file; `None` in [`Watch`] when it can't be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
    })
}

/// The files a config was read from: the config itself and every password file.
fn files_of(config: &Config) -> Vec<PathBuf> {
    let mut files = vec![config.file.clone()];
    for a in &config.accounts {
        if let Some(t) = &a.template
            && !files.contains(&t.password_file)
        {
            files.push(t.password_file.clone());
        }
    }
    files
}

/// The watched files with the stamps last seen.
pub(crate) struct Watch {
    files: Vec<(PathBuf, Option<Stamp>)>,
    /// A change was seen and has not yet stayed still for a whole poll.
    settling: bool,
}

impl Watch {
    /// Watches the files `config` was read from, as they are now.
    pub(crate) fn new(config: &Config) -> Watch {
        let files = files_of(config)
            .into_iter()
            .map(|f| {
                let s = stamp(&f);
                (f, s)
            })
            .collect();
        Watch {
            files,
            settling: false,
        }
    }

    /// After a reload: watch the new config's files, keeping the stamps already seen
    /// (a change made while the reload read the files shows at the next poll).
    pub(crate) fn retarget(&mut self, config: &Config) {
        let old = std::mem::take(&mut self.files);
        self.files = files_of(config)
            .into_iter()
            .map(|f| match old.iter().find(|(p, _)| *p == f) {
                Some((_, s)) => (f, *s),
                None => {
                    let s = stamp(&f);
                    (f, s)
                }
            })
            .collect();
    }

    /// Before a reload for another reason (SIGHUP): take the files as they are now, so
    /// the watch does not reload them again (a later change still shows).
    pub(crate) fn mark(&mut self) {
        for (path, seen) in &mut self.files {
            *seen = stamp(path);
        }
        self.settling = false;
    }

    /// One poll: true when the files changed since the last reload and have not
    /// changed since the previous poll.
    pub(crate) fn poll(&mut self) -> bool {
        let mut moved = false;
        for (path, seen) in &mut self.files {
            let now = stamp(path);
            if now != *seen {
                *seen = now;
                moved = true;
            }
        }
        if moved {
            self.settling = true;
            return false;
        }
        std::mem::take(&mut self.settling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path, extra: &str) -> Config {
        let path = dir.join("proxy.toml");
        let text = format!(
            "[proxy]\nstate_dir = \"{}\"\n\n[[listener]]\nprotocol = \"imap\"\nupstream = \"imap.example.com:993\"\n{extra}",
            dir.join("state").display()
        );
        std::fs::write(&path, text).unwrap();
        Config::load(&path).unwrap()
    }

    #[test]
    fn a_change_is_reported_once_it_has_settled() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path(), "");
        let mut w = Watch::new(&config);
        assert!(!w.poll(), "nothing changed");
        std::fs::write(&config.file, "[proxy]\n# half written").unwrap();
        assert!(!w.poll(), "changed just now: wait one poll");
        std::fs::write(&config.file, "[proxy]\n# still being written, longer").unwrap();
        assert!(!w.poll(), "changed again: wait again");
        assert!(w.poll(), "unchanged for a poll: reload");
        assert!(!w.poll(), "reported once");
    }

    #[test]
    fn a_file_replaced_through_a_symlink_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path(), "");
        let v1 = dir.path().join("v1.toml");
        std::fs::rename(&config.file, &v1).unwrap();
        std::os::unix::fs::symlink(&v1, &config.file).unwrap();
        let mut w = Watch::new(&config);
        // Same length and content, another file: what a ConfigMap update looks like.
        let v2 = dir.path().join("v2.toml");
        std::fs::copy(&v1, &v2).unwrap();
        let tmp = dir.path().join("link.tmp");
        std::os::unix::fs::symlink(&v2, &tmp).unwrap();
        std::fs::rename(&tmp, &config.file).unwrap();
        assert!(!w.poll());
        assert!(w.poll());
    }

    #[test]
    fn password_files_are_watched_and_a_deleted_file_counts_as_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let passwd = dir.path().join("users.passwd");
        std::fs::write(&passwd, "").unwrap();
        let template = format!(
            "\n[[account]]\nusername = \"*@example.com\"\npassword_file = \"{}\"\nprovider = \"google\"\nclient_id = \"id\"\n",
            passwd.display()
        );
        let config = config_in(dir.path(), &template);
        let mut w = Watch::new(&config);
        assert_eq!(w.files.len(), 2, "{:?}", w.files);
        std::fs::write(&passwd, "# a comment\n").unwrap();
        assert!(!w.poll());
        assert!(w.poll(), "a password file edit asks for a reload");
        std::fs::remove_file(&passwd).unwrap();
        assert!(!w.poll());
        assert!(w.poll(), "so does its removal (the reload then reports it)");
    }

    #[test]
    fn mark_takes_the_files_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path(), "");
        let mut w = Watch::new(&config);
        std::fs::write(&config.file, "# reloaded by SIGHUP\n").unwrap();
        w.mark();
        assert!(!w.poll() && !w.poll(), "no second reload for the same edit");
    }

    #[test]
    fn retarget_keeps_the_stamps_seen_for_files_still_watched() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path(), "");
        let mut w = Watch::new(&config);
        std::fs::write(&config.file, "# edited while the reload ran\n").unwrap();
        w.retarget(&config);
        assert!(!w.poll(), "the edit is seen");
        assert!(w.poll(), "and reloaded after it settles");
    }
}
