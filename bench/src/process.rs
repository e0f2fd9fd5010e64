//! The servers under test, each its own process: pinned to a core with
//! `taskset` when asked, logging to a file, stopped with SIGTERM (SIGKILL
//! after a grace period, and on drop, so that an error never leaves one
//! behind). Resident memory is read from `/proc/<pid>/status`.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// How a server process is started.
pub struct Launch<'a> {
    /// For logs and messages: `chat-service`, `noop-grpc`, …
    pub name: &'a str,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Set on top of the inherited environment, from which every `CHAT_*` and
    /// `EDGE_*` variable is first removed (the suite decides the config).
    pub env: BTreeMap<String, String>,
    /// Pin to this core (`taskset -c`).
    pub cpu: Option<usize>,
    pub log_dir: &'a Path,
}

pub struct Server {
    pub name: String,
    child: Child,
    pub log: PathBuf,
}

impl Server {
    pub fn spawn(launch: Launch<'_>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(launch.log_dir)?;
        let log = launch.log_dir.join(format!("{}.log", launch.name));
        let stdout =
            File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let stderr = stdout.try_clone()?;
        let mut command = match launch.cpu {
            Some(cpu) => {
                let mut command = Command::new("taskset");
                command.arg("-c").arg(cpu.to_string()).arg(&launch.program);
                command
            }
            None => Command::new(&launch.program),
        };
        command
            .args(&launch.args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        for (key, _) in std::env::vars() {
            if key.starts_with("CHAT_") || key.starts_with("EDGE_") {
                command.env_remove(key);
            }
        }
        command.envs(&launch.env);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", launch.program.display()))?;
        Ok(Self {
            name: launch.name.to_owned(),
            child,
            log,
        })
    }

    /// The process id (`taskset` execs the server, so this is the server's).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails, with the end of the log, if the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}); end of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            );
        }
        Ok(())
    }

    /// Waits until `addr` accepts connections.
    pub async fn wait_for_port(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_running()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "{} did not listen on {addr} within {timeout:?}; end of {}:\n{}",
                    self.name,
                    self.log.display(),
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident set size, in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_bytes(self.pid())
    }

    /// SIGTERM, then SIGKILL if the process has not exited within `grace`.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.pid().to_string())
                .status();
            let deadline = Instant::now() + grace;
            while self.child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    self.child.kill()?;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmRSS` of a process, in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).context("no VmRSS line in /proc/<pid>/status")
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times (`USER_HZ`, 100 on
/// every Linux the suite runs on).
const USER_HZ: f64 = 100.0;

/// CPU time a process has used so far (user + system, all its threads), in
/// seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| ticks as f64 / USER_HZ)
        .context("unexpected /proc/<pid>/stat")
}

/// A process's CPU time at one instant, for [`CpuSample::seconds_since`]:
/// each live thread's from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds)
/// and the process's from `/proc/<pid>/stat` (10 ms ticks, dead threads
/// included).
///
/// Why both: at 10 messages a second a 6 s window of chat-service is a few
/// ticks, so µs per message from ticks alone is ±170 µs; the threads'
/// nanoseconds are exact, unless a thread ended within the window (its time
/// is then only in the ticks).
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    ticks_seconds: f64,
    thread_nanos: std::collections::HashMap<u32, u64>,
}

impl CpuSample {
    pub fn take(pid: u32) -> Self {
        Self {
            ticks_seconds: cpu_seconds(pid).unwrap_or(0.0),
            thread_nanos: thread_nanos(pid),
        }
    }

    /// CPU seconds used between `before` and this sample: the threads' sum
    /// when every thread of `before` is still there (threads started since
    /// count from zero), else the ticks.
    pub fn seconds_since(&self, before: &Self) -> f64 {
        let all_alive = !self.thread_nanos.is_empty()
            && before
                .thread_nanos
                .keys()
                .all(|tid| self.thread_nanos.contains_key(tid));
        if !all_alive {
            return self.ticks_seconds - before.ticks_seconds;
        }
        let nanos: u64 = self
            .thread_nanos
            .iter()
            .map(|(tid, &now)| {
                now.saturating_sub(before.thread_nanos.get(tid).copied().unwrap_or(0))
            })
            .sum();
        nanos as f64 / 1e9
    }
}

/// Each live thread's time on a CPU, in ns (first field of its schedstat);
/// empty when unreadable.
fn thread_nanos(pid: u32) -> std::collections::HashMap<u32, u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return std::collections::HashMap::new();
    };
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let tid: u32 = task.file_name().to_str()?.parse().ok()?;
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
            Some((tid, nanos))
        })
        .collect()
}

/// utime + stime: fields 14 and 15, counted after the command name, which
/// is in parentheses and may itself hold spaces or parentheses.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// A free port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_local_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// The last lines of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The binaries built beside this one (`target/release` or `target/debug`).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let current = std::env::current_exe()?;
    let directory = current
        .parent()
        .context("the benchmark binary has no directory")?;
    let path = directory.join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build it first (scripts/bench.sh does)",
        path.display()
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tchat-service\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn cpu_time_is_user_plus_system_ticks() {
        let stat = "4242 (chat (bench) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 37 0 0 20 0 9 0 1234 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(287));
        assert_eq!(parse_cpu_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn cpu_time_comes_from_the_threads_while_they_all_live() {
        let sample = |ticks_seconds, threads: &[(u32, u64)]| CpuSample {
            ticks_seconds,
            thread_nanos: threads.iter().copied().collect(),
        };
        let before = sample(1.0, &[(1, 1_000), (2, 5_000)]);
        // Thread 3 started meanwhile: all of its time is in the window.
        let after = sample(1.01, &[(1, 4_000), (2, 5_000), (3, 2_000)]);
        assert!((after.seconds_since(&before) - 5e-6).abs() < 1e-12);
        // Thread 2 ended: its time is only in the ticks.
        let after = sample(1.02, &[(1, 4_000)]);
        assert!((after.seconds_since(&before) - 0.02).abs() < 1e-9);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        assert!(rss_bytes(std::process::id()).expect("readable") > 0);
    }
}
