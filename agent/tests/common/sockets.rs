//! Watching a process's sockets from /proc: which of its file descriptors are sockets,
//! and whether any of them listens (TCP LISTEN, an unconnected UDP socket, a listening
//! Unix socket). Used to prove the agent never opens an inbound door.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The socket inodes among `pid`'s file descriptors.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let text = target.to_string_lossy().into_owned();
            text.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Lines of `/proc/<pid>/net/<table>` whose socket is one of `inodes` and listens.
fn listening(pid: u32, inodes: &HashSet<u64>) -> Vec<String> {
    let mut found = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(rem), Some(state), Some(inode)) = (cols.get(2), cols.get(3), cols.get(9))
            else {
                continue;
            };
            let Ok(inode) = inode.parse::<u64>() else {
                continue;
            };
            if !inodes.contains(&inode) {
                continue;
            }
            let unconnected_udp = table.starts_with("udp")
                && rem.ends_with(":0000")
                && rem.trim_start_matches('0').starts_with(':');
            if (table.starts_with("tcp") && *state == "0A") || unconnected_udp {
                found.push(format!("{table}: {line}"));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/unix")) {
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(flags), Some(inode)) = (cols.get(3), cols.get(6)) else {
                continue;
            };
            let listens = u32::from_str_radix(flags, 16).is_ok_and(|f| f & 0x0001_0000 != 0);
            if listens && inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i)) {
                found.push(format!("unix: {line}"));
            }
        }
    }
    found
}

/// What a watch saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Samples taken.
    pub samples: u64,
    /// Samples in which the process had at least one socket (proves the watch sees
    /// sockets at all).
    pub with_sockets: u64,
    /// Every listening socket seen.
    pub listening: Vec<String>,
}

impl Seen {
    /// Asserts that the watch saw the process hold a socket at least once: without
    /// that, an empty [`Seen::listening`] proves nothing.
    #[track_caller]
    pub fn assert_saw_sockets(&self) {
        assert!(
            self.with_sockets > 0,
            "the watch never saw a socket: {self:?}"
        );
    }

    /// Asserts that `who` (the process watched) never listened on a socket.
    #[track_caller]
    pub fn assert_never_listened(&self, who: &str) {
        assert!(
            self.listening.is_empty(),
            "{who} listened: {:?}",
            self.listening
        );
    }
}

/// Samples `pid`'s sockets every millisecond until stopped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// Starts watching `pid`.
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let inodes = socket_inodes(pid);
                let found = if inodes.is_empty() {
                    Vec::new()
                } else {
                    listening(pid, &inodes)
                };
                let mut seen = v.lock().unwrap();
                seen.samples += 1;
                if !inodes.is_empty() {
                    seen.with_sockets += 1;
                }
                seen.listening.extend(found);
                drop(seen);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops watching; what was seen.
    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen.lock().unwrap().clone()
    }
}
