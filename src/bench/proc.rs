//! Process and thread CPU / memory from /proc (Linux), and small statistics helpers.

use std::time::Duration;

/// Clock ticks per second of /proc's utime/stime (USER_HZ: 100 on every Linux ABI
/// that matters here).
const TICKS: f64 = 100.0;

/// utime + stime of a /proc `stat` line, in seconds.
fn stat_cpu(stat: &str) -> Option<f64> {
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let u: f64 = f.get(11)?.parse().ok()?;
    let s: f64 = f.get(12)?.parse().ok()?;
    Some((u + s) / TICKS)
}

/// CPU seconds (user + system) used so far by process `pid`.
pub fn cpu(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_cpu(&s))
        .unwrap_or(0.0)
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let v = l.strip_prefix(field)?.strip_prefix(':')?;
            v.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// CPU seconds used so far by this process's threads whose name starts with
/// `prefix` (tokio worker threads are named by the benchmark's runtimes).
pub fn threads_cpu(prefix: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    dir.flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim_end().starts_with(prefix))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|s| stat_cpu(&s))
        .sum()
}

/// Measures how busy the load client's ("bench-client") threads are over a phase.
pub struct ClientMeter {
    cpu: f64,
    t: std::time::Instant,
}

impl ClientMeter {
    pub fn start() -> ClientMeter {
        ClientMeter {
            cpu: threads_cpu("bench-client"),
            t: std::time::Instant::now(),
        }
    }
    /// Client CPU seconds per wall-clock second since `start` (1.0 = one full core).
    pub fn busy(&self) -> f64 {
        let wall = self.t.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        (threads_cpu("bench-client") - self.cpu) / wall
    }
}

/// Busy and total jiffies of all CPUs together, from the first line of /proc/stat
/// (busy = user + nice + system + irq + softirq + steal).
fn machine_jiffies() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0.0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, busy + get(3) + get(4))
}

/// How many cores the whole machine kept busy over a phase (kernel work such as
/// loopback TCP included, whichever process it is charged to).
pub struct CoreMeter {
    start: (f64, f64),
}

impl CoreMeter {
    pub fn start() -> CoreMeter {
        CoreMeter {
            start: machine_jiffies(),
        }
    }
    /// Busy cores since `start` (2.0 = both cores of a 2-core machine, all the time).
    pub fn cores(&self) -> f64 {
        let (busy, total) = machine_jiffies();
        let (db, dt) = (busy - self.start.0, total - self.start.1);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if dt <= 0.0 { 0.0 } else { db / dt * cpus }
    }
}

/// Set by `--pin`: the bench process (load client and upstreams) runs on CPU 0, the
/// proxy and the reference relay on CPU 1.
static PINNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Pins this process to CPU 0; call before any thread starts (threads inherit it).
pub fn pin_self() -> std::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(0);
    rustix::thread::sched_setaffinity(None, &set)?;
    PINNED.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// A command for a process under test (proxy, relay): run through `taskset -c 1`
/// when pinned, so it and all its threads stay on CPU 1.
pub fn command_under_test(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    if PINNED.load(std::sync::atomic::Ordering::Relaxed) {
        let mut c = std::process::Command::new("taskset");
        c.args(["-c", "1"]).arg(program);
        c
    } else {
        std::process::Command::new(program)
    }
}

/// How long one measured round may take before it counts as stalled.
pub const ROUND_LIMIT: Duration = Duration::from_secs(120);

/// `f`, or an error naming `what` when it takes longer than [`ROUND_LIMIT`] (a stall
/// must fail the scenario, not hang the benchmark).
pub async fn within<T>(
    what: &str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(ROUND_LIMIT, f).await.map_err(|_| {
        std::io::Error::other(format!(
            "{what}: stalled (no result within {ROUND_LIMIT:?})"
        ))
    })?
}

/// The soft limit on open files.
pub fn nofile_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(1024)
}

pub fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// Nearest-rank percentile; 0 for no samples.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_stat_and_percentiles() {
        let line = "42 (tokio rt (x)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(super::stat_cpu(line), Some(3.0));
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(super::median(&v), 3.0);
        assert_eq!(super::percentile(&v, 99.0), 5.0);
    }
}
