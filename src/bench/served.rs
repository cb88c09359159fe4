//! A process under test besides the proxy (HAProxy, email-oauth2-proxy): started with
//! its output in a log file, waited for until it listens, measured through /proc,
//! killed when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Served {
    child: Child,
}

impl Served {
    /// Starts `cmd` (`name` in errors) with stdout and stderr in `log`, and waits at
    /// most `limit` until every address in `addrs` accepts a connection. An early exit
    /// or the time running out is an error that quotes the log.
    pub fn spawn(
        mut cmd: Command,
        name: &str,
        log: &Path,
        addrs: &[SocketAddr],
        limit: Duration,
    ) -> Result<Served, String> {
        let file = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        let mut s = Served { child };
        let deadline = Instant::now() + limit;
        while addrs.iter().any(|a| TcpStream::connect(a).is_err()) {
            if let Ok(Some(status)) = s.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!("{name} exited with {status}: {text}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not listen within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(s)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// CPU seconds (user + system) so far.
    pub fn cpu(&self) -> f64 {
        super::proc::cpu(self.pid())
    }
    pub fn rss_kib(&self) -> u64 {
        super::proc::status_kib(self.pid(), "VmRSS")
    }
    pub fn hwm_kib(&self) -> u64 {
        super::proc::status_kib(self.pid(), "VmHWM")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
