//! A private Dovecot 2.3 for the benchmark: IMAP on two free loopback ports (plain and
//! implicit TLS with the benchmark's upstream certificate), XOAUTH2 checked by
//! introspection at the test authorization server, mail in a Maildir under a temporary
//! directory, seeded directly with realistic messages of mixed sizes.
//!
//! Started with `dovecot -F -c CONF` (never the system service); stopped when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oauth_mail_proxy::authserver::AuthServer;

use oauth_mail_proxy::testkit::dovecot_conf::{
    ConfInput, NODELAY_PASSWD, Ports, dovecot_conf, oauth2_conf,
};
use oauth_mail_proxy::testkit::dovecot_sys::{MailOwner, find_dovecot, mail_owner, stop};

pub struct Dovecot {
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    /// Messages and bytes seeded into the INBOX.
    pub messages: usize,
    pub bytes: u64,
    owner: MailOwner,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

fn chmod(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

impl Dovecot {
    /// Starts Dovecot (its TLS listener presents `cert`/`key`) and waits until both
    /// listeners accept. Errors when Dovecot is not installed or does not start.
    pub fn start(auth: &AuthServer, cert: &Path, key: &Path) -> Result<Dovecot, String> {
        let bin = find_dovecot().ok_or("Dovecot is not installed (no `dovecot` in PATH)")?;
        let owner = mail_owner()?;
        // A short path: unix sockets under base_dir must fit in 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("omp-bench-dc")
            .tempdir_in("/tmp")
            .map_err(|e| e.to_string())?;
        let root = dir.path();
        let io = |e: std::io::Error| e.to_string();
        // Dovecot's unprivileged processes must reach sockets and mail under it.
        chmod(root, 0o755).map_err(io)?;
        for sub in ["state", "mail", "tls"] {
            std::fs::create_dir(root.join(sub)).map_err(io)?;
        }
        // Copies of the certificate and key Dovecot (as root) reads at start.
        let (c, k) = (root.join("tls/cert.pem"), root.join("tls/key.pem"));
        std::fs::copy(cert, &c).map_err(io)?;
        std::fs::copy(key, &k).map_err(io)?;
        let cfg = auth.config();
        let oauth2 = oauth2_conf(
            &auth.introspect_url(),
            &cfg.introspect_client_id,
            &cfg.introspect_client_secret,
        );
        std::fs::write(root.join("oauth2.conf.ext"), oauth2).map_err(io)?;
        std::fs::write(root.join("nodelay.passwd"), NODELAY_PASSWD).map_err(io)?;
        let probes: Vec<TcpListener> = (0..2)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        let port = |i: usize| probes[i].local_addr().map(|a| a.port()).unwrap_or(0);
        let (imap, imaps) = (port(0), port(1));
        let conf = root.join("dovecot.conf");
        let input = ConfInput {
            name: "omp-bench",
            dir: root,
            ports: Ports {
                imap,
                imaps,
                pop3: 0,
                pop3s: 0,
                submission: 0,
                submissions: 0,
            },
            owner: &owner,
            cert: &c,
            key: &k,
            sink_port: 0,
            verbose: false,
            debug: false,
        };
        std::fs::write(&conf, dovecot_conf(&input)).map_err(io)?;
        let stderr = std::fs::File::create(root.join("stderr.log")).map_err(io)?;
        drop(probes);
        let mut child = Command::new(&bin)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().map_err(io)?)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let log = || {
            let r = |n: &str| std::fs::read_to_string(root.join(n)).unwrap_or_default();
            format!("{}{}", r("dovecot.log"), r("stderr.log"))
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in [imap, imaps] {
            while TcpStream::connect(("127.0.0.1", p)).is_err() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("dovecot exited with {status}\n{}", log()));
                }
                if Instant::now() > deadline {
                    stop(&mut child);
                    return Err(format!("dovecot not listening after 20 s\n{}", log()));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        Ok(Dovecot {
            imap: ([127, 0, 0, 1], imap).into(),
            imaps: ([127, 0, 0, 1], imaps).into(),
            messages: 0,
            bytes: 0,
            owner,
            child,
            dir,
        })
    }

    fn own(&self, path: &Path) -> std::io::Result<()> {
        if self.owner.as_root {
            std::os::unix::fs::chown(path, Some(self.owner.uid), Some(self.owner.gid))?;
        }
        Ok(())
    }

    /// Writes `count` messages of 1 KB to 1 MB (log-uniform, so most are small) into
    /// `user`'s Maildir (`cur/`, seen), as a delivery agent would.
    pub fn seed(&mut self, user: &str, count: usize) -> std::io::Result<()> {
        let home = self.dir.path().join("mail").join(user.to_lowercase());
        let maildir = home.join("Maildir");
        for d in [&home, &maildir, &maildir.join("cur"), &maildir.join("new")] {
            std::fs::create_dir_all(d)?;
            chmod(d, 0o700)?;
            self.own(d)?;
        }
        let tmp = maildir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        chmod(&tmp, 0o700)?;
        self.own(&tmp)?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let now = oauth_mail_proxy::oauth::outcome::unix_now();
        for i in 0..count {
            // 1 KB * 1000^u, u uniform in [0, 1).
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let size = (1000.0 * 1000f64.powf(u)) as usize;
            let msg = message(i, size, &mut rng);
            let name = format!(
                "{}.M{i}P{}.bench,S={}:2,S",
                now - (count - i) as u64,
                std::process::id(),
                msg.len()
            );
            let path = maildir.join("cur").join(name);
            std::fs::write(&path, &msg)?;
            self.own(&path)?;
            self.messages += 1;
            self.bytes += msg.len() as u64;
        }
        Ok(())
    }
}

/// xorshift64*: deterministic filler, not cryptographic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const WORDS: &[&str] = &[
    "the",
    "meeting",
    "report",
    "attached",
    "please",
    "review",
    "quarterly",
    "numbers",
    "thanks",
    "regards",
    "schedule",
    "project",
    "update",
    "budget",
    "team",
    "deadline",
    "draft",
    "proposal",
    "customer",
    "feedback",
    "release",
    "notes",
    "tomorrow",
    "agenda",
];

/// A message of about `size` bytes: headers, a text part, and above 16 KB a base64
/// attachment; CRLF line ends, lines of at most 76 characters.
fn message(i: usize, size: usize, rng: &mut Rng) -> Vec<u8> {
    let mut m = format!(
        "Return-Path: <sender{s}@example.org>\r\nFrom: Sender {s} <sender{s}@example.org>\r\n\
         To: bench@example.com\r\nSubject: Message {i}: quarterly report and notes\r\n\
         Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <{i}.bench@example.org>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n\
         --b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        s = i % 97
    )
    .into_bytes();
    let text_end = if size > 16_000 { 4_000 } else { size };
    let mut line = String::new();
    while m.len() < text_end {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        if line.len() + w.len() + 1 > 72 {
            m.extend_from_slice(line.trim_end().as_bytes());
            m.extend_from_slice(b"\r\n");
            line.clear();
        }
        line.push_str(w);
        line.push(' ');
    }
    if size > 16_000 {
        m.extend_from_slice(
            format!(
                "\r\n--b{i}\r\nContent-Type: application/pdf; name=\"doc{i}.pdf\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\n"
            )
            .as_bytes(),
        );
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        while m.len() + 78 < size {
            let r = rng.next();
            m.extend((0..76).map(|k| B64[((r >> (k % 10 * 6)) as usize + k) % 64]));
            m.extend_from_slice(b"\r\n");
        }
    }
    m.extend_from_slice(format!("\r\n--b{i}--\r\n").as_bytes());
    m
}
