//! The system side of the Dovecot rig: finding the binary, the mail owner (creating
//! `vmail` when root), short temporary directories, and stopping the process tree.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::dovecot_conf::MailOwner;

pub const SETUP_HINT: &str = "run `scripts/setup-test-deps.sh` (as root, or with sudo) to install Dovecot 2.3 \
     (dovecot-imapd, dovecot-pop3d, dovecot-submissiond) and create the vmail user";

/// SIGTERM to the master; if it is not gone quickly (it waits for children, and a
/// login process that saw a failed introspection lingers for seconds), SIGTERM its
/// children too. Once the children are gone the master only idles on a one-second
/// timer, so it gets SIGKILL then; so does everything after 10 s.
pub fn stop(child: &mut Child) {
    let master = child.id();
    signal("TERM", &[master]);
    let started = Instant::now();
    let mut children_signalled = false;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let children = children_of(master);
        let elapsed = started.elapsed();
        if elapsed > Duration::from_secs(10)
            || (children.is_empty() && elapsed > Duration::from_millis(50))
        {
            signal("KILL", &children);
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        if !children_signalled && elapsed > Duration::from_millis(200) {
            signal("TERM", &children);
            children_signalled = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kill -SIG pids` through `sh`, whose builtin `kill` exists even on images
/// without procps.
fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let list: Vec<String> = pids.iter().map(u32::to_string).collect();
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{sig} {} 2>/dev/null", list.join(" ")))
        .stdin(Stdio::null())
        .status();
}

/// Live (non-zombie) PIDs whose parent is `parent`, from /proc/PID/stat.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid ...": comm may contain spaces; split after ')'.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            // Zombies are already dead; the master reaps them.
            (ppid == parent && state != "Z").then_some(pid)
        })
        .collect()
}

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
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from);
    let found = std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join("dovecot"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
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

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `vmail` (created when missing) when running as root; else the current user.
pub fn mail_owner() -> MailOwner {
    static USERADD: Mutex<()> = Mutex::new(());
    if run("id", &["-u"]).as_deref() != Some("0") {
        let id = |flag: &str| run("id", &[flag]).unwrap_or_else(|| panic!("`id {flag}` failed"));
        return MailOwner {
            user: id("-un"),
            group: id("-gn"),
            uid: id("-u").parse().expect("uid"),
            gid: id("-g").parse().expect("gid"),
            as_root: false,
        };
    }
    let _guard = USERADD.lock().unwrap_or_else(|e| e.into_inner());
    if run("getent", &["passwd", "vmail"]).is_none() {
        // Racing test processes may both try; only the lookup afterwards matters.
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "vmail",
            ])
            .stdin(Stdio::null())
            .status();
    }
    let entry = run("getent", &["passwd", "vmail"])
        .unwrap_or_else(|| panic!("no vmail user and `useradd` failed: {SETUP_HINT}"));
    let fields: Vec<&str> = entry.split(':').collect();
    let uid: u32 = fields
        .get(2)
        .and_then(|f| f.parse().ok())
        .expect("vmail uid");
    let gid: u32 = fields
        .get(3)
        .and_then(|f| f.parse().ok())
        .expect("vmail gid");
    let group = run("getent", &["group", &gid.to_string()])
        .and_then(|g| g.split(':').next().map(str::to_owned))
        .unwrap_or_else(|| "vmail".to_owned());
    MailOwner {
        user: "vmail".to_owned(),
        group,
        uid,
        gid,
        as_root: true,
    }
}
