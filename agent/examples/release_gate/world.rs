//! What every case shares: one Garage, one sshd, and per architecture a signed
//! registry of that architecture's PostgreSQL clients served over HTTPS.

use crate::args::{Arch, Args};
use crate::common::registry::{serve, Registry, Served};
use dbcrate_registry::build::Installation;
use dbcrate_testkit::{Deps, S3Server, SftpServer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A signed registry for one architecture and the server handing it out.
pub struct ArchRegistry {
    pub registry: Registry,
    pub served: Served,
}

pub struct World {
    pub s3: S3Server,
    pub sftp: SftpServer,
    pub registries: Vec<(Arch, ArchRegistry)>,
    /// Per arm64 major: the Debian arm64 system its client came from (loader, C
    /// library); absent means not covered on arm64.
    pub arm64_sysroots: BTreeMap<u32, PathBuf>,
}

impl World {
    pub fn start(args: &Args) -> Result<Self, String> {
        let s3 = S3Server::start().map_err(|e| format!("Garage: {e}"))?;
        let sftp = SftpServer::start().map_err(|e| format!("sshd: {e}"))?;
        let arm64_sysroots = arm64_sysroots(&args.releasetools, &args.majors);
        let mut registries = Vec::new();
        for candidate in &args.candidates {
            let installs = match candidate.arch {
                Arch::Amd64 => amd64_installs(&args.majors)?,
                Arch::Arm64 => arm64_installs(&arm64_sysroots),
            };
            if installs.is_empty() {
                continue;
            }
            let registry = Registry::from_installations(&installs);
            let served = serve(&registry.tree, registry.dir.path());
            registries.push((candidate.arch, ArchRegistry { registry, served }));
        }
        Ok(Self {
            s3,
            sftp,
            registries,
            arm64_sysroots,
        })
    }

    pub fn registry(&self, arch: Arch) -> Option<&ArchRegistry> {
        self.registries
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, r)| r)
    }
}

/// The test kit's amd64 clients (the same builds the test suite uses).
fn amd64_installs(majors: &[u32]) -> Result<Vec<Installation>, String> {
    let deps = Deps::from_env();
    majors
        .iter()
        .map(|&major| {
            let install = deps
                .pg_client_install(major)
                .map_err(|e| format!("PostgreSQL {major} client: {e}"))?;
            Ok(Installation {
                major,
                arch: Arch::Amd64.registry_name().into(),
                bin_dir: install.bin_dir,
                lib_dirs: install.lib_dirs,
                sysroot: None,
            })
        })
        .collect()
}

/// `<releasetools>/arm64/pg<M>`, where scripts/provision-releasetools unpacked an arm64
/// client with its libraries and C library, for the majors it found one for.
fn arm64_sysroots(releasetools: &Path, majors: &[u32]) -> BTreeMap<u32, PathBuf> {
    majors
        .iter()
        .map(|&m| (m, releasetools.join("arm64").join(format!("pg{m}"))))
        .filter(|(_, root)| root.join("pgbin/pg_dump").exists())
        .collect()
}

fn arm64_installs(sysroots: &BTreeMap<u32, PathBuf>) -> Vec<Installation> {
    sysroots
        .iter()
        .map(|(&major, root)| Installation {
            major,
            arch: Arch::Arm64.registry_name().into(),
            bin_dir: root.join("pgbin"),
            // The loader finds the rest in the sysroot (and a bundled libpq by RUNPATH).
            lib_dirs: Vec::new(),
            sysroot: Some(root.clone()),
        })
        .collect()
}
