//! How busy the whole machine's CPUs were during a run, from `/proc/stat`: whether a
//! case was bound by the CPU (busy near 100%) or waited on something else, and how
//! much of the time the hypervisor gave to other guests (steal), which makes every
//! figure on a shared machine noisier.

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

    /// Since `earlier`: the share of the CPU time this guest had that was busy, and the
    /// share of all CPU time that was stolen (both 0–1), if any ticks passed.
    pub fn since(self, earlier: Self) -> Option<(f64, f64)> {
        let busy = self.busy.saturating_sub(earlier.busy) as f64;
        let idle = self.idle.saturating_sub(earlier.idle) as f64;
        let steal = self.steal.saturating_sub(earlier.steal) as f64;
        let ours = busy + idle;
        (ours > 0.0).then(|| (busy / ours, steal / (ours + steal)))
    }
}
