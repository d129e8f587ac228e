//! What a directory holds, as tests compare it.
//!
//! Why here: the storage tests (what a probe or a failed write left behind) and the
//! agent's scheduled tests (a destination outside the agent's roots is left untouched)
//! each had a copy of this listing.

use std::path::Path;

/// The names directly in `dir` (files and directories alike), sorted.
///
/// # Panics
/// When `dir` cannot be read.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
