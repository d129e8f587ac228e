//! Handing memory the control plane has freed back to the operating system.
//!
//! glibc's allocator keeps what a thread frees in that thread's arena for reuse instead of
//! returning it. Under 10,000 kept-alive agents (docs/benchmarks.md, the 30-minute
//! soaks) the control plane's resident memory crept about 1 MiB a minute this way on
//! both database engines, with nothing leaked: `malloc_trim(0)` called in the running
//! process gave back 76 MiB at once, to below where the load had started. Housekeeping
//! therefore calls [`release_free_memory`] once a minute. It is the one `unsafe` call in
//! the control plane: glibc's own function, with a plain integer argument.

/// Returns the allocator's free pages to the operating system (glibc's `malloc_trim`),
/// and whether any were returned. Elsewhere (musl, other systems) it does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes a byte count and works on the allocator's own state
    // under the allocator's own locks; it frees nothing that is in use.
    unsafe { malloc_trim(0) == 1 }
}

/// Returns the allocator's free pages to the operating system: nothing to do here.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// The process's resident memory, in KiB.
    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn memory_a_thread_freed_goes_back_to_the_system() {
        // A thread fills its arena with 64 MiB of blocks and frees 15 of every 16: the
        // freed runs lie between live blocks, so the allocator keeps them.
        let kept = std::thread::spawn(|| {
            let blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 16 * 1024]).collect();
            blocks.into_iter().step_by(16).collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        let before = resident_kib();
        assert!(release_free_memory(), "nothing was returned");
        let after = resident_kib();
        assert!(
            before.saturating_sub(after) >= 32 * 1024,
            "resident {before} KiB before, {after} KiB after"
        );
        assert_eq!(kept.len(), 256);
    }
}
