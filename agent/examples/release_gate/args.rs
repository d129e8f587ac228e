//! The gate's command line.

use std::path::PathBuf;

pub const USAGE: &str = "usage: release_gate --agent ARCH=BINARY... [--major N]... \
[--json FILE] [--pass-records DIR] [--releasetools DIR]

  --agent ARCH=BINARY  a candidate: amd64=… or arm64=… (one per architecture)
  --major N            a PostgreSQL major to gate (repeatable; default 13 to 18)
  --json FILE          write the machine-readable summary there
  --pass-records DIR   on a full pass (every major) write DIR/passed-<sha256> per candidate
  --releasetools DIR   where scripts/provision-releasetools put qemu and the arm64 clients";

/// Every PostgreSQL major a release is gated on.
pub const ALL_MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];

/// A CPU architecture the agent is released for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// Its name in release file names and the table.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Its name in registry manifests (Rust's `std::env::consts::ARCH`).
    pub fn registry_name(self) -> &'static str {
        match self {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One candidate binary.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub arch: Arch,
    pub binary: PathBuf,
    /// Lower-case hex SHA-256 of the binary, read once at start.
    pub sha256: String,
}

#[derive(Debug)]
pub struct Args {
    pub candidates: Vec<Candidate>,
    pub majors: Vec<u32>,
    pub json: Option<PathBuf>,
    pub pass_records: Option<PathBuf>,
    pub releasetools: PathBuf,
}

impl Args {
    pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut majors = Vec::new();
        let mut json = None;
        let mut pass_records = None;
        let mut releasetools = std::env::var_os("DBCRATE_RELEASETOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/cache/dbcrate-releasetools"));
        while let Some(flag) = argv.next() {
            let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--agent" => candidates.push(candidate(&value()?)?),
                "--major" => {
                    let text = value()?;
                    let major = text
                        .parse::<u32>()
                        .ok()
                        .filter(|m| ALL_MAJORS.contains(m))
                        .ok_or_else(|| format!("--major {text}: supported majors are 13 to 18"))?;
                    if !majors.contains(&major) {
                        majors.push(major);
                    }
                }
                "--json" => json = Some(PathBuf::from(value()?)),
                "--pass-records" => pass_records = Some(PathBuf::from(value()?)),
                "--releasetools" => releasetools = PathBuf::from(value()?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        if candidates.is_empty() {
            return Err(
                "no candidate: give --agent amd64=BINARY and/or --agent arm64=BINARY".into(),
            );
        }
        if majors.is_empty() {
            majors = ALL_MAJORS.to_vec();
        }
        majors.sort_unstable();
        Ok(Self {
            candidates,
            majors,
            json,
            pass_records,
            releasetools,
        })
    }

    /// Whether every supported major is gated (a pass record needs all of them).
    pub fn all_majors(&self) -> bool {
        self.majors == ALL_MAJORS
    }
}

fn candidate(text: &str) -> Result<Candidate, String> {
    let (arch, path) = text
        .split_once('=')
        .ok_or_else(|| format!("--agent {text:?}: expected ARCH=BINARY (amd64=… or arm64=…)"))?;
    let arch = match arch {
        "amd64" => Arch::Amd64,
        "arm64" => Arch::Arm64,
        other => {
            return Err(format!(
                "--agent: unknown architecture {other:?} (amd64 or arm64)"
            ))
        }
    };
    let binary = std::fs::canonicalize(path)
        .map_err(|e| format!("--agent {arch}={path}: {e}; build it with scripts/build-release"))?;
    let bytes = std::fs::read(&binary).map_err(|e| format!("reading {path}: {e}"))?;
    use sha2::Digest;
    let sha256 = dbcrate_core::hex::encode(&sha2::Sha256::digest(&bytes));
    Ok(Candidate {
        arch,
        binary,
        sha256,
    })
}
