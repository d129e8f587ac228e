//! A small tmpfs mounted over a directory: a destination whose disk fills up after a
//! few writes, for the tests of what a full disk does to a backup (they run as root).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a given size mounted at a directory, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s form: `64k`, `1m`) at `at`. Panics saying
    /// why when it cannot (not root, no `mount`): the test cannot go on without it.
    pub fn mount(at: &Path, size: &str) -> Self {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .unwrap_or_else(|e| panic!("running mount: {e}"));
        crate::assert_succeeded("mounting a tmpfs (the tests run as root)", &out);
        Self(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
