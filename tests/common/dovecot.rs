//! A private Dovecot 2.3 for one test: IMAP, POP3 and submission on free loopback
//! ports, XOAUTH2/OAUTHBEARER checked by introspection at an [`AuthServer`], mail in
//! maildirs under a temporary directory, submissions relayed to an [`SmtpSink`].
//!
//! Started with `dovecot -F -c CONF` from a generated configuration (never the
//! system service); stopped with SIGTERM when dropped. See /work/shared/DOVECOT.md
//! and `scripts/setup-test-deps.sh`.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oauth_mail_proxy::authserver::AuthServer;
use tempfile::TempDir;

use super::certs::TestCerts;
use super::dovecot_sys::{SETUP_HINT, find_dovecot, mail_owner, stop, temp_dir};
use super::smtp_sink::SmtpSink;
use oauth_mail_proxy::testkit::dovecot_conf::{
    ConfInput, MailOwner, NODELAY_PASSWD, Ports, dovecot_conf, oauth2_conf,
};

/// How long Dovecot may take to open its listeners.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running private Dovecot. Fields are the listener ports (all on 127.0.0.1).
pub struct Dovecot {
    /// IMAP with STARTTLS.
    pub imap_port: u16,
    /// IMAP over implicit TLS.
    pub imaps_port: u16,
    /// POP3 with STLS.
    pub pop3_port: u16,
    /// POP3 over implicit TLS.
    pub pop3s_port: u16,
    /// Submission (587-style, STARTTLS).
    pub submission_port: u16,
    /// Submission over implicit TLS (465-style).
    pub submissions_port: u16,
    /// The CA and server certificate Dovecot presents.
    pub certs: TestCerts,
    /// Where submission relays messages.
    pub sink: SmtpSink,
    /// The system user owning the mail.
    pub owner: MailOwner,
    child: Child,
    dir: TempDir,
}

impl Dovecot {
    /// Starts Dovecot checking tokens at `auth`'s introspection endpoint and waits
    /// until every listener accepts connections. Panics (never skips) when Dovecot
    /// is missing or fails to start.
    pub async fn start(auth: &AuthServer) -> Dovecot {
        let bin = find_dovecot();
        let owner = mail_owner();
        let sink = SmtpSink::start().await;
        let mut attempt = 1;
        loop {
            match try_start(&bin, auth, &owner, sink.port()).await {
                Ok((dir, certs, ports, child)) => {
                    return Dovecot {
                        imap_port: ports.imap,
                        imaps_port: ports.imaps,
                        pop3_port: ports.pop3,
                        pop3s_port: ports.pop3s,
                        submission_port: ports.submission,
                        submissions_port: ports.submissions,
                        certs,
                        sink,
                        owner,
                        child,
                        dir,
                    };
                }
                // Another process took one of the free ports between our probe and
                // Dovecot's bind: pick new ports.
                Err(log) if log.contains("Address already in use") && attempt < 3 => attempt += 1,
                Err(log) => panic!("Dovecot did not start.\n--- log ---\n{log}"),
            }
        }
    }

    /// PID of the Dovecot master.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Path of the test CA (PEM).
    pub fn ca_path(&self) -> &Path {
        &self.certs.ca_path
    }

    /// The test CA as PEM text.
    pub fn ca_pem(&self) -> &str {
        &self.certs.ca_pem
    }

    /// The temporary directory holding config, logs, sockets and mail.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Dovecot's log plus anything it wrote to stderr, for debugging.
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let (log, stderr) = (read("dovecot.log"), read("stderr.log"));
        if stderr.trim().is_empty() {
            log
        } else {
            format!("{log}--- stderr ---\n{stderr}")
        }
    }

    /// The user's maildir (`HOME/Maildir`), created with `cur`, `new` and `tmp`, all
    /// owned by the mail owner. Dovecot lowercases user names (`auth_username_format
    /// = %Lu`), and so does this.
    pub fn maildir(&self, user: &str) -> PathBuf {
        let home = self.dir.path().join("mail").join(user.to_lowercase());
        let maildir = home.join("Maildir");
        for d in [
            home.clone(),
            maildir.clone(),
            maildir.join("cur"),
            maildir.join("new"),
            maildir.join("tmp"),
        ] {
            if !d.exists() {
                std::fs::create_dir(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))
                    .expect("chmod");
                self.chown(&d);
            }
        }
        maildir
    }

    /// Delivers `raw` (use CRLF line endings to get the same bytes back from IMAP
    /// and POP3) into `user`'s INBOX as a new message; returns the file's path.
    pub fn seed_message(&self, user: &str, raw: &[u8]) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let maildir = self.maildir(user);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!(
            "{}.M{}P{}Q{n}.omp-test,S={}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            raw.len()
        );
        let tmp = maildir.join("tmp").join(&name);
        std::fs::write(&tmp, raw).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        self.chown(&tmp);
        let dest = maildir.join("new").join(&name);
        std::fs::rename(&tmp, &dest).expect("rename into new/");
        dest
    }

    fn chown(&self, path: &Path) {
        if self.owner.as_root {
            std::os::unix::fs::chown(path, Some(self.owner.uid), Some(self.owner.gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!("--- Dovecot log (last lines) ---\n{}", tail.join("\n"));
        }
        stop(&mut self.child);
    }
}

/// One attempt: fresh directory, certificates, ports and config; spawn; wait.
async fn try_start(
    bin: &Path,
    auth: &AuthServer,
    owner: &MailOwner,
    sink_port: u16,
) -> Result<(TempDir, TestCerts, Ports, Child), String> {
    let dir = temp_dir();
    let root = dir.path();
    // Dovecot's unprivileged processes must reach sockets and mail under it.
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
    let certs = TestCerts::write_to(root);
    for sub in ["state", "mail"] {
        std::fs::create_dir(root.join(sub)).expect("mkdir");
    }
    if owner.as_root {
        std::os::unix::fs::chown(root.join("mail"), Some(owner.uid), Some(owner.gid))
            .expect("chown mail");
    }
    let cfg = auth.config();
    let oauth2 = oauth2_conf(
        &auth.introspect_url(),
        &cfg.introspect_client_id,
        &cfg.introspect_client_secret,
    );
    std::fs::write(root.join("oauth2.conf.ext"), oauth2).expect("write oauth2 conf");
    std::fs::write(root.join("nodelay.passwd"), NODELAY_PASSWD).expect("write nodelay passwd");

    let probes: Vec<TcpListener> = (0..6)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("probe port"))
        .collect();
    let port = |i: usize| probes[i].local_addr().expect("probe addr").port();
    let ports = Ports {
        imap: port(0),
        imaps: port(1),
        pop3: port(2),
        pop3s: port(3),
        submission: port(4),
        submissions: port(5),
    };
    let input = ConfInput {
        name: "omp-test",
        dir: root,
        ports,
        owner,
        cert: &certs.cert_path,
        key: &certs.key_path,
        sink_port,
        verbose: true,
        debug: std::env::var_os("OMP_DOVECOT_DEBUG").is_some_and(|v| v != "0"),
    };
    let conf = root.join("dovecot.conf");
    std::fs::write(&conf, dovecot_conf(&input)).expect("write dovecot.conf");
    let stderr = std::fs::File::create(root.join("stderr.log")).expect("stderr.log");
    drop(probes);

    let mut child = Command::new(bin)
        .arg("-F")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(stderr.try_clone().expect("dup"))
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", bin.display()));

    let read_log = || {
        let r = |n: &str| std::fs::read_to_string(root.join(n)).unwrap_or_default();
        format!("{}{}", r("dovecot.log"), r("stderr.log"))
    };
    let all = [
        ports.imap,
        ports.imaps,
        ports.pop3,
        ports.pop3s,
        ports.submission,
        ports.submissions,
    ];
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut pending: Vec<u16> = all.to_vec();
    while !pending.is_empty() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("dovecot exited with {status}\n{}", read_log()));
        }
        if Instant::now() > deadline {
            stop(&mut child);
            return Err(format!(
                "listeners {pending:?} not ready after {READY_TIMEOUT:?}\n{}",
                read_log()
            ));
        }
        let mut still = Vec::new();
        for p in pending {
            if tokio::net::TcpStream::connect(("127.0.0.1", p))
                .await
                .is_err()
            {
                still.push(p);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    Ok((dir, certs, ports, child))
}
