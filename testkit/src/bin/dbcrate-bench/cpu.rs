//! How busy the whole machine's CPUs were during a run, from `/proc/stat`: whether a
//! case was bound by the CPU (busy near 100%) or waited on something else, and how
//! much of the time the hypervisor gave to other guests (steal), which makes every
//! figure on a shared machine noisier. The busy time in core-seconds is the work a case
//! took, whatever ran it (PostgreSQL's backend, pg_dump, the consumer): on N cores no
//! run of it can take less than that over N, which is how a target the machine cannot
//! reach is told from one the pipeline misses.

/// What one run took of the machine's CPUs.
#[derive(Clone, Copy)]
pub struct CpuUse {
    /// Busy share of the CPU time this guest had (0–1).
    pub busy_share: f64,
    /// Share of all CPU time the hypervisor gave to others (0–1).
    pub stolen_share: f64,
    /// Busy time summed over every CPU.
    pub busy_core_seconds: f64,
}

/// The `cpu` line of `/proc/stat`: ticks spent busy, idle (or waiting on I/O), and
/// stolen, summed over every CPU.
#[derive(Clone, Copy, Default)]
pub struct Ticks {
    busy: u64,
    idle: u64,
    steal: u64,
}

impl Ticks {
    /// Now; zeros when `/proc/stat` cannot be read (the shares are then not reported).
    pub fn now() -> Self {
        let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
            return Self::default();
        };
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            idle: at(3) + at(4),
            steal: at(7),
        }
    }

    /// What was used since `earlier`, if any ticks passed.
    pub fn since(self, earlier: Self) -> Option<CpuUse> {
        let busy = self.busy.saturating_sub(earlier.busy) as f64;
        let idle = self.idle.saturating_sub(earlier.idle) as f64;
        let steal = self.steal.saturating_sub(earlier.steal) as f64;
        let ours = busy + idle;
        (ours > 0.0).then(|| CpuUse {
            busy_share: busy / ours,
            stolen_share: steal / (ours + steal),
            busy_core_seconds: busy / ticks_per_second(),
        })
    }
}

/// `/proc/stat` counts in the kernel's USER_HZ ticks.
#[allow(unsafe_code)]
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}
