//! The real `oauth-mail-proxy` binary as a child process: one-shot commands with
//! their output, and `serve` on a chosen port with its output in a file. Every wait
//! has a timeout; children are killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_oauth-mail-proxy");

/// How long a one-shot command may run, and how long `serve` may take to listen.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long `serve` may take to exit after SIGTERM.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Environment variables of the binary that must not leak in from the test runner.
const ENV: [&str; 3] = [
    "OAUTH_MAIL_PROXY_CONFIG",
    "OAUTH_MAIL_PROXY_TOKEN_KEY",
    "RUST_LOG",
];

/// `oauth-mail-proxy ARGS` with a clean environment (no config path, token key or
/// log filter inherited), stdin, stdout and stderr null, killed on drop.
pub fn command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for v in ENV {
        c.env_remove(v);
    }
    c
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs `cmd` to completion with `input` on stdin (closed afterwards).
pub async fn run(mut cmd: Command, input: &[u8]) -> Finished {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn oauth-mail-proxy");
    let mut stdin = child.stdin.take().expect("stdin piped");
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        // A command that exits without reading may close the pipe first.
        let _ = stdin.write_all(&input).await;
    });
    let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .expect("oauth-mail-proxy did not finish in time")
        .expect("wait for oauth-mail-proxy");
    let _ = writer.await;
    Finished {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `oauth-mail-proxy --config CONFIG ARGS`, stdin empty.
pub async fn run_with_config(config: &Path, args: &[&str]) -> Finished {
    let mut all = vec!["--config", config.to_str().expect("UTF-8 path")];
    all.extend_from_slice(args);
    run(command(&all), b"").await
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("probe a free port")
        .port()
}

/// Waits for `child` to exit, at most `limit`.
pub async fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    tokio::time::timeout(limit, child.wait())
        .await
        .ok()
        .map(|r| r.expect("wait for child"))
}

/// Sends SIGTERM to `child` (with kill(1): no unsafe code here).
pub fn sigterm(child: &Child) {
    let pid = child.id().expect("child still running");
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid} failed");
}

/// Sends SIGHUP to `child` (reload the config), with kill(1).
pub fn sighup(child: &Child) {
    let pid = child.id().expect("child still running");
    let status = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid} failed");
}

/// `serve` running as a child, its stdout and stderr going to one file.
pub struct ServeProcess {
    pub child: Child,
    /// The port the one listener binds.
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
}

impl ServeProcess {
    /// Picks a free port, has `write_config(port)` write a config whose listener binds
    /// it, runs `oauth-mail-proxy --config F [extra] serve` with output to `log`, and
    /// waits until the port accepts. Picks another port when the one picked was taken
    /// in the meantime.
    pub async fn start(
        write_config: impl Fn(u16) -> PathBuf,
        extra: &[&str],
        log: &Path,
    ) -> ServeProcess {
        for _ in 0..3 {
            let port = free_port();
            let config = write_config(port);
            let out = std::fs::File::create(log).expect("create log file");
            let err = out.try_clone().expect("dup log file");
            let mut args = vec!["--config", config.to_str().expect("UTF-8 path")];
            args.extend_from_slice(extra);
            args.push("serve");
            let mut child = command(&args)
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("spawn oauth-mail-proxy serve");
            let deadline = Instant::now() + RUN_TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let text = std::fs::read_to_string(log).unwrap_or_default();
                    if text.contains("Address already in use") {
                        break; // try another port
                    }
                    panic!("serve exited with {status} before listening:\n{text}");
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return ServeProcess {
                        child,
                        port,
                        config,
                        log: log.to_path_buf(),
                    };
                }
                assert!(
                    Instant::now() < deadline,
                    "serve did not listen on {port} within {RUN_TIMEOUT:?}:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        panic!("serve could not bind a free port in three attempts");
    }

    /// Everything the process has written so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).expect("read serve log")
    }

    /// Waits until the output contains `needle` `count` times (at most
    /// [`RUN_TIMEOUT`]); panics with the output otherwise.
    pub async fn wait_for_output(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + RUN_TIMEOUT;
        while self.output().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} (x{count}) in the output:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGTERM, then waits at most [`EXIT_TIMEOUT`]; panics (with the output) if the
    /// process does not exit in time.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        sigterm(&self.child);
        let Some(status) = wait_exit(&mut self.child, EXIT_TIMEOUT).await else {
            panic!(
                "serve did not exit within {EXIT_TIMEOUT:?} of SIGTERM:\n{}",
                self.output()
            );
        };
        (status, self.output())
    }
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, ...), in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resident memory of `pid` now, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS")
}

/// Peak resident memory of `pid` since it started or since [`reset_peak_rss`], in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM")
}

/// Resets `pid`'s peak RSS to its current RSS (`/proc/PID/clear_refs`, Linux 4.0+).
/// Returns false when the kernel refused.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// File descriptors `pid` has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Raises this process's soft `RLIMIT_NOFILE` to at least `want` (up to the hard
/// limit) with prlimit(1), no unsafe code; children spawned afterwards inherit it.
/// Returns the soft limit in force.
pub fn raise_nofile(want: u64) -> u64 {
    let limits = || -> (u64, u64) {
        let text = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
        let line = text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("Max open files in /proc/self/limits");
        let mut nums = line["Max open files".len()..]
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(u64::MAX));
        (nums.next().unwrap(), nums.next().unwrap())
    };
    let (soft, hard) = limits();
    if soft >= want {
        return soft;
    }
    let target = want.min(hard);
    let _ = std::process::Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={target}:{hard}"))
        .status();
    limits().0
}

/// `oauth-mail-proxy ARGS` run through `sh` with regular-file writes limited to
/// `blocks` 512-byte blocks (`ulimit -f`) and `SIGXFSZ` ignored, so a write past the
/// limit fails with `EFBIG` (as on a full disk) instead of killing the process. Same
/// clean environment as [`command`]; pipes (stdout, stderr) are not limited.
pub fn command_with_file_size_limit<S: AsRef<std::ffi::OsStr>>(args: &[S], blocks: u64) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "trap '' XFSZ && ulimit -f {blocks} && exec \"$0\" \"$@\""
        ))
        .arg(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for v in ENV {
        c.env_remove(v);
    }
    c
}

/// `serve` started from a prepared [`Command`], its stdout and stderr read through
/// pipes into memory (for children that cannot write files).
pub struct PipedServe {
    pub child: Child,
    pub port: u16,
    output: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl PipedServe {
    /// Spawns `cmd` (which must run `serve` with a listener on `port`) and waits until
    /// the port accepts; panics with the output if it exits first or takes too long.
    pub async fn start(mut cmd: Command, port: u16) -> PipedServe {
        use tokio::io::AsyncReadExt;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout piped");
        let err = child.stderr.take().expect("stderr piped");
        for mut pipe in [
            Box::new(out) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
            Box::new(err),
        ] {
            let output = output.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let mut serve = PipedServe {
            child,
            port,
            output,
        };
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            if let Ok(Some(status)) = serve.child.try_wait() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "serve exited with {status} before listening:\n{}",
                    serve.output()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return serve;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not listen on {port} within {RUN_TIMEOUT:?}:\n{}",
                serve.output()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Everything the process has written so far.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// SIGTERM, then waits at most [`EXIT_TIMEOUT`]; returns the status and output.
    pub async fn terminate(mut self) -> (ExitStatus, String) {
        sigterm(&self.child);
        let Some(status) = wait_exit(&mut self.child, EXIT_TIMEOUT).await else {
            panic!(
                "serve did not exit within {EXIT_TIMEOUT:?} of SIGTERM:\n{}",
                self.output()
            );
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        (status, self.output())
    }
}
