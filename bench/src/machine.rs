//! What the numbers were measured on, read from `/proc`: they mean little
//! without the machine, its load and the pinning.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub started_at: String,
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_gib: f64,
    pub kernel: String,
    /// 1, 5 and 15-minute load averages when the suite started.
    pub load_average_before: [f64; 3],
    /// The cores this process (the load generator) may run on.
    pub generator_cpus: String,
    /// The core the servers are pinned to, if any.
    pub server_cpu: Option<usize>,
    /// `release` or `debug`.
    pub build: String,
}

impl Machine {
    pub fn describe(server_cpu: Option<usize>) -> Self {
        let cpuinfo = read("/proc/cpuinfo");
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split_once(':'))
                .map(|(_, value)| value.trim().to_owned())
        };
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find(|line| line.starts_with("MemTotal:"))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0.0);
        Self {
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            cpu_model: field("model name").unwrap_or_else(|| "unknown".to_owned()),
            cpus: cpuinfo
                .lines()
                .filter(|line| line.starts_with("processor"))
                .count(),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            load_average_before: load_average(),
            generator_cpus: read("/proc/self/status")
                .lines()
                .find(|line| line.starts_with("Cpus_allowed_list:"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, value)| value.trim().to_owned())
                .unwrap_or_else(|| "?".to_owned()),
            server_cpu,
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_owned(),
        }
    }
}

/// The 1, 5 and 15-minute load averages.
pub fn load_average() -> [f64; 3] {
    let text = read("/proc/loadavg");
    let mut values = text
        .split_whitespace()
        .map(|value| value.parse().unwrap_or(0.0));
    [
        values.next().unwrap_or(0.0),
        values.next().unwrap_or(0.0),
        values.next().unwrap_or(0.0),
    ]
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
