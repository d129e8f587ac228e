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
/// searched first. With a `sysroot` (a system of the binary's architecture), its own
/// loader lists them (`ld.so --list`, what `ldd` runs), searching `lib_dirs` and then the
/// sysroot's library directories; it runs through qemu-user when the architecture is
/// not the host's.
pub fn needed_libraries(
    binary: &Path,
    lib_dirs: &[PathBuf],
    sysroot: Option<&Path>,
) -> Result<Vec<Library>> {
    let mut cmd;
    let mut search = lib_dirs.to_vec();
    if let Some(root) = sysroot {
        let loader = find_loader(root)?;
        search.extend(system_lib_dirs(root));
        let joined = std::env::join_paths(&search)
            .map_err(|e| Error::new(format!("bad library directory: {e}")))?;
        cmd = Command::new(&loader);
        cmd.arg("--library-path")
            .arg(joined)
            .arg("--list")
            .env_remove("LD_LIBRARY_PATH")
            .env("QEMU_LD_PREFIX", root);
    } else {
        cmd = Command::new("ldd");
        if search.is_empty() {
            cmd.env_remove("LD_LIBRARY_PATH");
        } else {
            let joined = std::env::join_paths(&search)
                .map_err(|e| Error::new(format!("bad library directory: {e}")))?;
            cmd.env("LD_LIBRARY_PATH", joined);
        }
    }
    cmd.arg(binary);
    let out = cmd.output().map_err(|e| {
        Error::new(format!(
            "cannot run {} (install libc-bin; for another architecture, qemu-user-static \
             registered with binfmt_misc): {e}",
            cmd.get_program().to_string_lossy()
        ))
    })?;
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

/// The loader file names of the architectures a sysroot may hold.
const LOADERS: [&str; 3] = [
    "ld-linux-aarch64.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-armhf.so.3",
];

/// The dynamic loader inside `root`. Debian's `ld-linux-*.so.*` is a symlink, relative
/// (`ld-2.31.so`) or absolute (`/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1`); an
/// absolute target is taken inside `root`, never on the build host.
fn find_loader(root: &Path) -> Result<PathBuf> {
    for dir in system_lib_dirs(root) {
        for name in LOADERS {
            if let Some(file) = resolve_in(root, &dir.join(name)) {
                return Ok(file);
            }
        }
    }
    Err(Error::new(format!(
        "{}: no dynamic loader ({}) found under lib/, lib64/ or usr/lib/ (with or without \
         the <arch>-linux-gnu subdirectory); a sysroot must hold that architecture's C \
         library",
        root.display(),
        LOADERS.join(", ")
    )))
}

/// `path` (under `root`) with its symlinks followed inside `root`, if it ends at a file.
fn resolve_in(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..16 {
        let meta = path.symlink_metadata().ok()?;
        if meta.is_file() {
            return Some(path);
        }
        let target = std::fs::read_link(&path).ok()?;
        path = match target.strip_prefix("/") {
            Ok(inside) => root.join(inside),
            Err(_) => path.parent()?.join(target),
        };
    }
    None
}

/// The directories a system's loader searches by default, under `root`.
fn system_lib_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for base in ["lib", "usr/lib", "lib64", "usr/lib64"] {
        for triplet in [
            "aarch64-linux-gnu",
            "x86_64-linux-gnu",
            "arm-linux-gnueabihf",
        ] {
            let dir = root.join(base).join(triplet);
            if dir.is_dir() {
                dirs.push(dir);
            }
        }
        let dir = root.join(base);
        if dir.is_dir() {
            dirs.push(dir);
        }
    }
    dirs
}

fn parse_ldd(text: &str, binary: &Path) -> Result<Vec<Library>> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim) {
        let Some((name, rest)) = line.split_once(" => ") else {
            continue; // the vDSO and the loader have no "=>"
        };
        // The loader lists itself by its path (`/lib/ld-linux-aarch64.so.1 => …`).
        let file_name = name.rsplit('/').next().unwrap_or(name);
        if GLIBC.iter().any(|g| file_name.starts_with(g)) {
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
    fn finds_a_sysroots_loader_through_its_symlinks_inside_the_sysroot() {
        let root = std::env::temp_dir().join(format!("dbcrate-loader-{}", std::process::id()));
        let lib = root.join("lib/aarch64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("ld-2.31.so"), b"loader").unwrap();
        // bullseye: a relative link beside the file; trixie: an absolute one from /lib.
        std::os::unix::fs::symlink("ld-2.31.so", lib.join("ld-linux-aarch64.so.1")).unwrap();
        std::os::unix::fs::symlink(
            "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
            root.join("lib/ld-linux-aarch64.so.1"),
        )
        .unwrap();
        let found = find_loader(&root).unwrap();
        assert_eq!(found, lib.join("ld-2.31.so"));
        assert_eq!(
            resolve_in(&root, &root.join("lib/ld-linux-aarch64.so.1")),
            Some(lib.join("ld-2.31.so"))
        );
        std::fs::remove_dir_all(&root).unwrap();
        assert!(find_loader(&root).is_err());
    }

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
        // `ld-linux-aarch64.so.1 --list` (a sysroot's loader) names itself with a path.
        let listed = "\tlibz.so.1 => /sys/usr/lib/aarch64-linux-gnu/libz.so.1 (0x0000)\n\
            \t/lib/ld-linux-aarch64.so.1 => /sys/lib/ld-linux-aarch64.so.1 (0x0000)\n";
        let libs = parse_ldd(listed, Path::new("pg_dump")).unwrap();
        assert_eq!(libs.len(), 1, "{libs:?}");
        assert_eq!(libs[0].name, "libz.so.1");
        let err = parse_ldd("\tlibssl.so.1.1 => not found\n", Path::new("pg_dump")).unwrap_err();
        assert!(err.to_string().contains("needs libssl.so.1.1"), "{err}");
    }
}
