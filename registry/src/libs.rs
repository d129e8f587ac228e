//! Which shared libraries a binary needs, as the dynamic loader resolves them (`ldd`).
//!
//! glibc itself (libc, libm, libpthread, libdl, librt, libresolv, the loader) is left
//! out: it must match the kernel interface of the host and is present on every
//! supported distro, while bundling it breaks more than it fixes. Everything else
//! (libpq, OpenSSL, Kerberos, LDAP, zlib, …) is bundled, so an artifact does not depend
//! on which versions the host happens to have.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Sonames provided by glibc, never bundled.
const GLIBC: [&str; 10] = [
    "linux-vdso.so",
    "ld-linux",
    "libc.so",
    "libm.so",
    "libpthread.so",
    "libdl.so",
    "librt.so",
    "libresolv.so",
    "libutil.so",
    "libanl.so",
];

/// One library to bundle: the name the binary asks for, and the file that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    /// The name in DT_NEEDED (the file name inside the artifact's `lib/`).
    pub name: String,
    /// Where the loader found it on this machine.
    pub path: PathBuf,
}

/// The non-glibc libraries `binary` loads, directly or indirectly, when `lib_dirs` are
/// searched first.
pub fn needed_libraries(binary: &Path, lib_dirs: &[PathBuf]) -> Result<Vec<Library>> {
    let mut cmd = Command::new("ldd");
    cmd.arg(binary);
    if lib_dirs.is_empty() {
        cmd.env_remove("LD_LIBRARY_PATH");
    } else {
        let joined = std::env::join_paths(lib_dirs)
            .map_err(|e| Error::new(format!("bad library directory: {e}")))?;
        cmd.env("LD_LIBRARY_PATH", joined);
    }
    let out = cmd
        .output()
        .map_err(|e| Error::new(format!("cannot run ldd (install libc-bin): {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Error::new(format!(
            "ldd {} failed ({}); is it a dynamically linked binary for this machine?",
            binary.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_ldd(&text, binary)
}

fn parse_ldd(text: &str, binary: &Path) -> Result<Vec<Library>> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some((name, rest)) = line.split_once(" => ") else {
            continue; // the vDSO and the loader have no "=>"
        };
        if GLIBC.iter().any(|g| name.starts_with(g)) {
            continue;
        }
        if rest.starts_with("not found") {
            return Err(Error::new(format!(
                "{} needs {name}, which was not found; add its directory to the \
                 installation's lib/",
                binary.display()
            )));
        }
        let path = rest.split(" (").next().unwrap_or(rest).trim();
        libs.push(Library {
            name: name.to_string(),
            path: PathBuf::from(path),
        });
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ldd_output_and_skips_glibc() {
        let text = "\tlinux-vdso.so.1 (0x00007f)\n\
            \tlibpq-084d.so.5.16 => /x/../libs/libpq-084d.so.5.16 (0x00007f)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        let libs = parse_ldd(text, Path::new("pg_dump")).unwrap();
        assert_eq!(
            libs,
            vec![Library {
                name: "libpq-084d.so.5.16".into(),
                path: "/x/../libs/libpq-084d.so.5.16".into()
            }]
        );
        let err = parse_ldd("\tlibssl.so.1.1 => not found\n", Path::new("pg_dump")).unwrap_err();
        assert!(err.to_string().contains("needs libssl.so.1.1"), "{err}");
    }
}
