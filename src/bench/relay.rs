//! HAProxy as the reference relay for the bulk scenarios: a protocol-blind TCP relay
//! between the same client and the same MiniImap upstreams, plain↔plain with
//! `splice(2)` (`option splice-auto`) and TLS↔TLS (terminated with the upstream's
//! certificate, re-encrypted to the upstream and verified). The client logs in with
//! XOAUTH2 itself, since HAProxy knows nothing of IMAP. What it reaches is the
//! ceiling for any user-space relay on this machine; the proxy is judged against
//! the direct connection all the same.

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::env::Env;
use super::served::Served;

/// Why HAProxy can't be used, or `None` when `haproxy -v` runs.
pub fn missing() -> Option<String> {
    let ok = Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| "haproxy not installed (apt-get install haproxy)".into())
}

pub struct Relay {
    process: Served,
    pub plain: SocketAddr,
    pub tls: SocketAddr,
}

fn free_port() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())
}

impl Relay {
    /// Writes the config and starts `haproxy -db` (foreground); waits until both
    /// frontends accept connections.
    pub fn start(env: &Env) -> Result<Relay, String> {
        let (plain, tls) = (free_port()?, free_port()?);
        let dir = env.dir.path().join("haproxy");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        // HAProxy wants the certificate and its key in one PEM file.
        let pem = dir.join("frontend.pem");
        let mut both = std::fs::read(env.upstream_ca()).map_err(|e| e.to_string())?;
        both.extend(std::fs::read(env.upstream_key()).map_err(|e| e.to_string())?);
        std::fs::write(&pem, both).map_err(|e| e.to_string())?;
        let config = format!(
            "global\n  maxconn 1000\n\
             defaults\n  mode tcp\n  option splice-request\n  option splice-response\n  timeout connect 10s\n  timeout client 1h\n  timeout server 1h\n\
             frontend plain\n  bind {plain}\n  default_backend up_plain\n\
             frontend tls\n  bind {tls} ssl crt {pem}\n  default_backend up_tls\n\
             backend up_plain\n  server up {up}\n\
             backend up_tls\n  server up {ups} ssl verify required ca-file {ca} sni str(localhost) verifyhost localhost\n",
            pem = pem.display(),
            up = env.imap.addr(),
            ups = env.imaps.addr(),
            ca = env.upstream_ca().display(),
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        let mut cmd = super::proc::command_under_test("haproxy");
        cmd.arg("-db").arg("-f").arg(&path);
        let process = Served::spawn(
            cmd,
            "haproxy",
            &dir.join("stderr.log"),
            &[plain, tls],
            Duration::from_secs(20),
        )?;
        Ok(Relay {
            process,
            plain,
            tls,
        })
    }

    /// CPU seconds of the HAProxy process so far.
    pub fn cpu(&self) -> f64 {
        self.process.cpu()
    }
}
