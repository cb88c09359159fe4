//! The system side of running a private Dovecot, shared by the test rig
//! (`tests/common/dovecot*.rs`) and the benchmark (`src/bench/dovecot*.rs`): finding
//! the binary, the mail owner (creating `vmail` when root), and stopping the
//! process tree.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who owns the mail and, when not root, runs every Dovecot process.
#[derive(Debug, Clone)]
pub struct MailOwner {
    pub user: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    /// Dovecot runs as root and switches to `uid` for mail processes; otherwise
    /// everything runs as the current user.
    pub as_root: bool,
}

/// The `dovecot` binary on `PATH` or in the usual sbin directories.
pub fn find_dovecot() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|d| d.join("dovecot"))
        .find(|p| p.is_file())
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
pub fn mail_owner() -> Result<MailOwner, String> {
    static USERADD: Mutex<()> = Mutex::new(());
    let id = |flag: &str| run("id", &[flag]).ok_or_else(|| format!("`id {flag}` failed"));
    if id("-u")? != "0" {
        return Ok(MailOwner {
            user: id("-un")?,
            group: id("-gn")?,
            uid: id("-u")?.parse().map_err(|_| "uid")?,
            gid: id("-g")?.parse().map_err(|_| "gid")?,
            as_root: false,
        });
    }
    let _guard = USERADD.lock().unwrap_or_else(|e| e.into_inner());
    if run("getent", &["passwd", "vmail"]).is_none() {
        // Racing processes may both try; only the lookup afterwards matters.
        let _ = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell"])
            .args(["/usr/sbin/nologin", "vmail"])
            .stdin(Stdio::null())
            .status();
    }
    let entry = run("getent", &["passwd", "vmail"]).ok_or("no vmail user and `useradd` failed")?;
    let f: Vec<&str> = entry.split(':').collect();
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<u32>().ok());
    let (uid, gid) = (num(2).ok_or("vmail uid")?, num(3).ok_or("vmail gid")?);
    let group = run("getent", &["group", &gid.to_string()])
        .and_then(|g| g.split(':').next().map(str::to_owned))
        .unwrap_or_else(|| "vmail".into());
    Ok(MailOwner {
        user: "vmail".into(),
        group,
        uid,
        gid,
        as_root: true,
    })
}

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
            (ppid == parent && state != "Z").then_some(pid)
        })
        .collect()
}
