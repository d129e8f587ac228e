//! An organisation's age key pair, made with stock `age-keygen` as a customer would.

use crate::process::run;
use crate::{Deps, KitError, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes a new identity to `dir/org.key` with `age-keygen` and returns its path and
/// its recipient (`age1…`).
pub fn age_keypair(deps: &Deps, dir: &Path) -> Result<(PathBuf, String)> {
    std::fs::create_dir_all(dir)
        .map_err(|e| KitError::io(format!("creating {}", dir.display()), e))?;
    let key = dir.join("org.key");
    run(
        "age-keygen",
        Command::new(deps.tool("age-keygen")?).arg("-o").arg(&key),
    )?;
    let recipient = run(
        "age-keygen -y",
        Command::new(deps.tool("age-keygen")?).arg("-y").arg(&key),
    )?
    .trim()
    .to_string();
    if !recipient.starts_with("age1") {
        return Err(KitError::new(format!(
            "age-keygen -y printed {recipient:?}, not a recipient"
        )));
    }
    Ok((key, recipient))
}
