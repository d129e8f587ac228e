//! `dbcrate-registry build`: self-contained artifacts of a major's client tools
//! (pg_dump, pg_dumpall, pg_restore, psql) and an unsigned manifest.json.
//!
//! An artifact is a deterministic `tar` (regular files only, owner 0, mtime 0) in zstd:
//!
//! ```text
//! bin/<tool>        sh wrappers: LD_LIBRARY_PATH=../lib, exec ../libexec/<tool>
//! libexec/<tool>    the real binaries
//! lib/<soname>…                      every non-glibc library they load (see `libs`)
//! ```
//!
//! The wrappers find the tree from their own location, so the artifact runs from any
//! directory. Every artifact is unpacked into a scratch directory and its `pg_dump
//! --version` run with an empty library path before it is listed: an artifact that is
//! not self-contained fails the build, not a customer's backup.

use crate::libs::needed_libraries;
use crate::{Error, Result};
use dbcrate_core::registry::layout::{ARTIFACT_DIR, MANIFEST};
use dbcrate_core::registry::metadata::{Artifact, Manifest, MANIFEST_TYPE};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tools an artifact carries: the dump and its restore; pg_dumpall, which saves the
/// cluster's roles next to each backup; and psql, for the stock restore steps
/// (applying those roles) on a host with no client tools of its own — the agent itself
/// never runs psql (its meta-commands would run on the agent's host).
pub const TOOLS: [&str; 4] = ["pg_dump", "pg_dumpall", "pg_restore", "psql"];

/// One PostgreSQL client installation to package.
#[derive(Debug, Clone)]
pub struct Installation {
    /// Its major.
    pub major: u32,
    /// Its CPU architecture (`x86_64`, `aarch64`).
    pub arch: String,
    /// Directory holding the [`TOOLS`] (ELF files or symlinks to them).
    pub bin_dir: PathBuf,
    /// Directories searched first for their libraries.
    pub lib_dirs: Vec<PathBuf>,
    /// For an architecture other than the build host's: the root of a system of that
    /// architecture (its loader and C library, e.g. an unpacked Debian arm64 base), whose
    /// loader resolves the libraries and whose C library runs the probe, through
    /// qemu-user registered with binfmt_misc. `None` builds natively.
    pub sysroot: Option<PathBuf>,
}

impl Installation {
    /// Finds `<input>/<major>-<arch>/bin/` (and `lib/` and `sysroot/` when present) for
    /// every installation in `input`.
    pub fn scan(input: &Path) -> Result<Vec<Self>> {
        let entries = std::fs::read_dir(input).map_err(|e| Error::io_at("reading", input, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io_at("reading", input, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let parsed = name
                .split_once('-')
                .and_then(|(m, a)| Some((m.parse::<u32>().ok()?, a.to_string())));
            let Some((major, arch)) = parsed else {
                return Err(Error::new(format!(
                    "{}: expected directories named <major>-<arch> (e.g. 16-x86_64), found \
                     {name:?}",
                    input.display()
                )));
            };
            let lib = entry.path().join("lib");
            let sysroot = entry.path().join("sysroot");
            found.push(Self {
                major,
                arch,
                bin_dir: entry.path().join("bin"),
                lib_dirs: if lib.is_dir() { vec![lib] } else { vec![] },
                sysroot: sysroot.is_dir().then_some(sysroot),
            });
        }
        found.sort_by(|a, b| (a.major, &a.arch).cmp(&(b.major, &b.arch)));
        Ok(found)
    }
}

fn wrapper(tool: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # dbcrate registry artifact: run the bundled {tool} with the bundled libraries.\n\
         # Shell built-ins only: it must work with an empty PATH.\n\
         case \"$0\" in */*) bin=\"${{0%/*}}\" ;; *) bin=. ;; esac\n\
         here=$(CDPATH= cd -P -- \"$bin/..\" && pwd -P) || exit 127\n\
         LD_LIBRARY_PATH=\"$here/lib\"\n\
         export LD_LIBRARY_PATH\n\
         exec \"$here/libexec/{tool}\" \"$@\"\n"
    )
}

/// The files of one artifact: path inside the archive → (source, mode) or contents.
enum Source {
    File(PathBuf),
    Text(String),
}

fn artifact_files(inst: &Installation) -> Result<BTreeMap<String, (Source, u32)>> {
    let mut files = BTreeMap::new();
    for tool in TOOLS {
        let given = inst.bin_dir.join(tool);
        let real = std::fs::canonicalize(&given).map_err(|e| {
            Error::io_at(
                &format!("PostgreSQL {} {}: finding", inst.major, inst.arch),
                &given,
                e,
            )
        })?;
        for lib in needed_libraries(&real, &inst.lib_dirs, inst.sysroot.as_deref())? {
            files.insert(format!("lib/{}", lib.name), (Source::File(lib.path), 0o644));
        }
        files.insert(format!("libexec/{tool}"), (Source::File(real), 0o755));
        files.insert(format!("bin/{tool}"), (Source::Text(wrapper(tool)), 0o755));
    }
    Ok(files)
}

fn write_tar_zst(files: &BTreeMap<String, (Source, u32)>, out: &Path) -> Result<()> {
    let file = std::fs::File::create(out).map_err(|e| Error::io_at("creating", out, e))?;
    let encoder =
        zstd::Encoder::new(file, 9).map_err(|e| Error::io_at("compressing into", out, e))?;
    let mut tar = tar::Builder::new(encoder);
    for (name, (source, mode)) in files {
        let data = match source {
            Source::File(path) => {
                std::fs::read(path).map_err(|e| Error::io_at("reading", path, e))?
            }
            Source::Text(text) => text.clone().into_bytes(),
        };
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, name, data.as_slice())
            .map_err(|e| Error::io_at("writing", out, e))?;
    }
    let encoder = tar
        .into_inner()
        .map_err(|e| Error::io_at("writing", out, e))?;
    let mut file = encoder
        .finish()
        .map_err(|e| Error::io_at("compressing into", out, e))?;
    file.flush()
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io_at("writing", out, e))
}

/// Unpacks `files` into `dir` as the agent would and returns `bin/pg_dump --version`
/// run with no inherited library path.
fn probe(
    files: &BTreeMap<String, (Source, u32)>,
    dir: &Path,
    inst: &Installation,
) -> Result<String> {
    for (name, (source, mode)) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent"))
            .map_err(|e| Error::io_at("creating", dir, e))?;
        match source {
            Source::File(src) => std::fs::copy(src, &path).map(|_| ()),
            Source::Text(text) => std::fs::write(&path, text),
        }
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode)))
        .map_err(|e| Error::io_at("writing", &path, e))?;
    }
    let mut versions = Vec::new();
    for tool in TOOLS {
        let mut cmd = Command::new(dir.join("bin").join(tool));
        cmd.arg("--version")
            // As agents may run it: no library path, no PATH, from anywhere.
            .env_remove("LD_LIBRARY_PATH")
            .env("PATH", "")
            .current_dir("/");
        if let Some(sysroot) = &inst.sysroot {
            // The foreign host's C library, for qemu-user (binfmt_misc) to load.
            cmd.env("QEMU_LD_PREFIX", sysroot);
        }
        let out = cmd
            .output()
            .map_err(|e| Error::new(format!("cannot run the assembled {tool}: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() {
            return Err(Error::new(format!(
                "the assembled PostgreSQL {} {tool} does not run on its own: {}",
                inst.major,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        versions.push(text);
    }
    let version = versions[0]
        .split(')')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    let major = version.split('.').next().unwrap_or_default();
    if let Some(other) = versions
        .iter()
        .find(|v| !v.contains(&format!(") {version}")))
    {
        return Err(Error::new(format!(
            "{}: the tools' versions differ ({:?} and {other:?}); give one installation",
            inst.bin_dir.display(),
            versions[0]
        )));
    }
    if major != inst.major.to_string() {
        return Err(Error::new(format!(
            "{} holds {:?}, not PostgreSQL {}",
            inst.bin_dir.display(),
            versions[0],
            inst.major
        )));
    }
    Ok(version)
}

/// Builds one artifact per installation into `out/artifacts/` and writes
/// `out/manifest.json` (unsigned) with `version` and `expires`.
pub fn build(
    installs: &[Installation],
    out: &Path,
    version: u64,
    expires: &str,
) -> Result<Manifest> {
    if installs.is_empty() {
        return Err(Error::new("no installations to package"));
    }
    let artifact_dir = out.join(ARTIFACT_DIR);
    std::fs::create_dir_all(&artifact_dir)
        .map_err(|e| Error::io_at("creating", &artifact_dir, e))?;
    // Absolute, because the probe runs the wrappers from another directory.
    let out = &std::fs::canonicalize(out).map_err(|e| Error::io_at("resolving", out, e))?;
    let artifact_dir = out.join(ARTIFACT_DIR);
    let mut artifacts = Vec::new();
    for inst in installs {
        if inst.arch != std::env::consts::ARCH && inst.sysroot.is_none() {
            return Err(Error::new(format!(
                "PostgreSQL {} {}: this build host is {}; build each architecture on its own \
                 kind of host, or give a sysroot of that architecture (<major>-<arch>/sysroot: \
                 its loader and C library) with qemu-user registered in binfmt_misc",
                inst.major,
                inst.arch,
                std::env::consts::ARCH
            )));
        }
        let files = artifact_files(inst)?;
        let scratch = out.join(format!(".probe-{}-{}", inst.major, inst.arch));
        let _ = std::fs::remove_dir_all(&scratch);
        let probed = probe(&files, &scratch, inst);
        let _ = std::fs::remove_dir_all(&scratch);
        let pg_version = probed?;
        let tmp = artifact_dir.join(format!(".pg{}-{}.tmp", inst.major, inst.arch));
        write_tar_zst(&files, &tmp)?;
        let bytes = std::fs::read(&tmp).map_err(|e| Error::io_at("reading", &tmp, e))?;
        let sha256 = dbcrate_core::hex::encode(&Sha256::digest(&bytes));
        let name = format!("pg{}-{}-{}.tar.zst", inst.major, inst.arch, &sha256[..16]);
        std::fs::rename(&tmp, artifact_dir.join(&name))
            .map_err(|e| Error::io_at("renaming", &tmp, e))?;
        artifacts.push(Artifact {
            pg_major: inst.major,
            arch: inst.arch.clone(),
            pg_version,
            url: format!("{ARTIFACT_DIR}/{name}"),
            length: bytes.len() as u64,
            sha256,
        });
    }
    let manifest = Manifest {
        kind: MANIFEST_TYPE.into(),
        version,
        expires: expires.into(),
        artifacts,
    };
    // Written as the signer will read it; it checks the result parses before signing.
    Manifest::parse(&manifest.to_json()).map_err(|e| Error::new(e.to_string()))?;
    let path = out.join(MANIFEST);
    std::fs::write(&path, manifest.to_json()).map_err(|e| Error::io_at("writing", &path, e))?;
    Ok(manifest)
}
