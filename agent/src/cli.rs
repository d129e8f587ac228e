//! The command line of `dbcrate-agent` (a contract: tests outside the project rely on
//! these flags exactly).

use crate::crypto::{parse_recipients, Decryption};
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::pg::DatabaseUrl;
use crate::pipeline::GlobalsSource;
use crate::pipeline::{BackupRequest, RestoreRequest};
use crate::registry::RegistryConfig;
use crate::storage::{Location, StorageOptions};
use clap::{Args, Parser, Subcommand};
use dbcrate_core::registry::minisign::PublicKey;
use std::path::PathBuf;

/// The dbcrate agent: streams pg_dump through zstd and age into storage you own.
#[derive(Parser, Debug)]
#[command(name = "dbcrate-agent", version, about, long_about = None, arg_required_else_help = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The agent's data directory unless `--data-dir` says otherwise: its identity, the
/// registry's trust state and unpacked pg_dump builds.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/dbcrate";

/// The agent's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Back up one database: pg_dump → zstd → age → storage. Prints one JSON object.
    Backup(BackupArgs),
    /// Restore a backup into an existing (empty) database, in one transaction.
    Restore(RestoreArgs),
    /// Enrol this host with the control plane: a new key, a certificate, stored in
    /// <data-dir>/identity/.
    Enroll(EnrollArgs),
    /// The long-running agent: keeps its certificate renewed and its CRL checked, and
    /// (later) takes jobs. Outbound connections only.
    Run(RunArgs),
}

/// Flags of `enroll`.
#[derive(Args, Debug)]
pub struct EnrollArgs {
    /// The control plane's agent endpoint, e.g. https://control.example.com:8444.
    #[arg(long, value_name = "URL")]
    pub control_url: String,
    /// The one-time enrolment token (dbce_…). Prefer DBCRATE_ENROLMENT_TOKEN or
    /// --token-file: a flag is visible in `ps` while enrolment runs.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DBCRATE_ENROLMENT_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// A file holding the enrolment token.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// PEM certificate(s) to trust for the control plane (e.g. its self-signed one).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// The control plane certificate's SHA-256 fingerprint, as `dbcrate-control serve`
    /// prints it (AB:CD:…), instead of --ca-file.
    #[arg(long, value_name = "SHA256", conflicts_with = "ca_file")]
    pub server_fingerprint: Option<String>,
    /// Where the identity is stored.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// This agent's name in the control plane (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// Refuse unless the token belongs to this organisation (org_…).
    #[arg(long, value_name = "ORG_ID")]
    pub org: Option<String>,
}

/// Flags of `run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Where the identity is stored (as given to `enroll`); jobs keep registry state and
    /// fetched tools here too.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Directory with the pg_dump and pg_restore for jobs, used instead of the control
    /// plane's registry (tools this host manages itself).
    #[arg(long, value_name = "DIR", conflicts_with = "no_registry")]
    pub pg_bin_dir: Option<PathBuf>,
    /// Ignore the control plane's registry: jobs use the pg_dump/pg_restore on PATH.
    #[arg(long)]
    pub no_registry: bool,
    /// PEM CA certificate(s) to trust for the control plane's registry instead of the
    /// system's roots (a private registry).
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// A directory under which jobs may read and write directory destinations (absolute,
    /// existing); repeat for several, or list them comma-separated in the environment. A
    /// job to a directory elsewhere, or to any directory when none is given, fails. S3 and
    /// SFTP destinations are not limited.
    #[arg(
        long = "directory-root",
        value_name = "DIR",
        env = "DBCRATE_AGENT_DIRECTORY_ROOTS",
        value_delimiter = ','
    )]
    pub directory_roots: Vec<PathBuf>,
    #[allow(missing_docs)] // flattened: documented on ZstdThreadsArg
    #[command(flatten)]
    pub zstd_threads: ZstdThreadsArg,
    /// Managed restores run with N parallel pg_restore jobs from a staged copy of the
    /// dump in --restore-staging-dir (see `restore --jobs`); default: one stream in one
    /// transaction.
    #[arg(
        long,
        value_name = "N",
        env = "DBCRATE_AGENT_RESTORE_JOBS",
        requires = "restore_staging_dir",
        value_parser = clap::value_parser!(u32).range(2..=crate::pipeline::MAX_RESTORE_JOBS as i64)
    )]
    pub restore_jobs: Option<u32>,
    /// Where managed restores with --restore-jobs stage the decrypted dump (an existing
    /// directory with room for it).
    #[arg(
        long,
        value_name = "DIR",
        env = "DBCRATE_AGENT_RESTORE_STAGING_DIR",
        requires = "restore_jobs"
    )]
    pub restore_staging_dir: Option<PathBuf>,
}

impl RunArgs {
    /// The options of the long-running agent.
    pub fn options(self) -> crate::control::run::RunOptions {
        crate::control::run::RunOptions {
            data_dir: self.data_dir,
            pg_bin_dir: self.pg_bin_dir,
            no_registry: self.no_registry,
            registry_ca: self.registry_ca,
            directory_roots: self.directory_roots,
            zstd_threads: self.zstd_threads.zstd_threads,
            parallel_restore: self
                .restore_jobs
                .zip(self.restore_staging_dir)
                .map(|(jobs, staging_dir)| crate::pipeline::ParallelRestore { jobs, staging_dir }),
        }
    }
}

/// Flags of `backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The database, postgresql://user[:password]@host:port/dbname (or PGPASSWORD).
    #[arg(long, value_name = "URL")]
    pub database_url: String,
    /// age public key (age1…) to encrypt to; repeat for several.
    #[arg(long = "recipient", value_name = "age1…", required = true)]
    pub recipients: Vec<String>,
    /// Where to write: s3://bucket/prefix, sftp://user@host:port/path, or file:///path.
    #[arg(long, value_name = "DEST")]
    pub destination: String,
    /// Name used in the object key (default: the database name).
    #[arg(long)]
    pub name: Option<String>,
    /// Directory with the pg_dump to use (default: from --registry-url, else PATH).
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
    /// zstd compression level.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,
    #[allow(missing_docs)] // flattened: documented on ZstdThreadsArg
    #[command(flatten)]
    pub zstd_threads: ZstdThreadsArg,
    /// Also count every table's rows in the dump's own snapshot (reported as
    /// `row_counts`; a restore drill compares them). Reads every table once more.
    #[arg(long)]
    pub count_rows: bool,
    #[allow(missing_docs)] // flattened: documented on StorageArgs
    #[command(flatten)]
    pub storage: StorageArgs,
    #[allow(missing_docs)] // flattened: documented on RegistryArgs
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Flags of `restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backup object: s3://bucket/key, sftp://user@host:port/path, or file:///path.
    #[arg(long, value_name = "OBJECT_URL")]
    pub source: String,
    /// age identity file (AGE-SECRET-KEY-1…) that opens the backup.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "file_key_file",
        conflicts_with = "file_key_file"
    )]
    pub identity: Option<PathBuf>,
    /// The backup's file key: 16 raw bytes or 32 hex digits (what managed restores use).
    #[arg(long, value_name = "FILE")]
    pub file_key_file: Option<PathBuf>,
    /// The target database, which must exist (restore into an empty one).
    #[arg(long, value_name = "URL")]
    pub database_url: String,
    /// Directory with the pg_restore to use (default: from --registry-url, else PATH).
    #[arg(long, value_name = "DIR")]
    pub pg_bin_dir: Option<PathBuf>,
    /// Refuse the backup unless its SHA-256 (as reported by backup) matches.
    #[arg(long, value_name = "HEX")]
    pub expect_sha256: Option<String>,
    /// The roles and other globals saved with the backup (its `….globals.sql.zst.age`
    /// object), applied first over the agent's own connection (never through psql);
    /// roles that exist are kept as they are. Needs --identity (a file key opens one
    /// object only).
    #[arg(long, value_name = "OBJECT_URL", requires = "identity")]
    pub globals: Option<String>,
    /// Restore with N parallel pg_restore jobs from a staged copy of the dump (needs
    /// --staging-dir). Faster on a server with cores to spare, but not one transaction:
    /// only into an empty database, and a failure leaves part of the backup restored.
    #[arg(
        long,
        value_name = "N",
        requires = "staging_dir",
        value_parser = clap::value_parser!(u32).range(2..=crate::pipeline::MAX_RESTORE_JOBS as i64)
    )]
    pub jobs: Option<u32>,
    /// An existing directory with room for the uncompressed dump, where --jobs stages
    /// it decrypted (in a private subdirectory, removed when the restore ends).
    #[arg(long, value_name = "DIR", requires = "jobs")]
    pub staging_dir: Option<PathBuf>,
    #[allow(missing_docs)] // flattened: documented on StorageArgs
    #[command(flatten)]
    pub storage: StorageArgs,
    #[allow(missing_docs)] // flattened: documented on RegistryArgs
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// How many of libzstd's workers compress a backup (`backup` and `run`).
#[derive(Args, Debug)]
pub struct ZstdThreadsArg {
    /// libzstd worker threads that compress (0: compress on the thread that reads
    /// pg_dump; default: one per available core, at most 4). Each worker costs memory
    /// (docs/benchmarks.md).
    #[arg(
        long,
        value_name = "N",
        env = "DBCRATE_AGENT_ZSTD_THREADS",
        value_parser = clap::value_parser!(u32).range(0..=crate::pipeline::compression::MAX_THREADS as i64)
    )]
    pub zstd_threads: Option<u32>,
}

/// Where to get pg_dump/pg_restore when --pg-bin-dir is not given.
#[derive(Args, Debug)]
pub struct RegistryArgs {
    /// The signed pg_dump registry (https://…); used when --pg-bin-dir is not given.
    #[arg(
        long,
        value_name = "URL",
        requires = "registry_root_keys",
        conflicts_with = "pg_bin_dir"
    )]
    pub registry_url: Option<String>,
    /// The registry's root version 1 public key (RW… from root-….pub); repeat for several.
    #[arg(
        long = "registry-root-key",
        value_name = "KEY",
        requires = "registry_url"
    )]
    pub registry_root_keys: Vec<String>,
    /// PEM CA certificate(s) to trust for the registry instead of the system's roots.
    #[arg(long, value_name = "FILE", requires = "registry_url")]
    pub registry_ca: Option<PathBuf>,
    /// The agent's data directory: registry state and fetched tools (pg/<major>/…).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

impl RegistryArgs {
    fn config(&self) -> Result<Option<RegistryConfig>> {
        let Some(url) = &self.registry_url else {
            return Ok(None);
        };
        let root_keys = self
            .registry_root_keys
            .iter()
            .map(|k| {
                PublicKey::parse(k)
                    .map_err(|e| Error::invalid_input(format!("--registry-root-key: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(RegistryConfig {
            url: url.clone(),
            root_keys,
            ca_file: self.registry_ca.clone(),
            data_dir: self.data_dir.clone(),
        }))
    }
}

/// Storage flags shared by both commands.
#[derive(Args, Debug)]
pub struct StorageArgs {
    /// S3 endpoint URL (default: AWS for the region).
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Use path-style S3 requests (Garage, MinIO, most self-hosted stores).
    #[arg(long)]
    pub s3_path_style: bool,
    /// SSH private key for SFTP (OpenSSH format, unencrypted).
    #[arg(long, value_name = "FILE")]
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file pinning the SFTP host key (default ~/.ssh/known_hosts).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
}

impl StorageArgs {
    fn options(&self) -> StorageOptions {
        StorageOptions {
            s3_endpoint: self.s3_endpoint.clone(),
            s3_region: self.s3_region.clone(),
            s3_path_style: self.s3_path_style,
            ssh_key: self.ssh_key.clone(),
            known_hosts: self.known_hosts.clone(),
            expected_size: 0,
            ..StorageOptions::default()
        }
    }
}

fn env_password() -> Option<String> {
    std::env::var("PGPASSWORD").ok()
}

impl BackupArgs {
    /// Checks the flags and builds the request.
    pub fn into_request(self, interrupt: Interrupt) -> Result<BackupRequest> {
        Ok(BackupRequest {
            database: DatabaseUrl::parse(&self.database_url, env_password())?,
            recipients: parse_recipients(&self.recipients)?,
            destination: Location::parse(&self.destination, "--destination")?,
            storage: self.storage.options(),
            name: self.name,
            job: "cli".into(),
            key: None,
            registry: self.registry.config()?,
            pg_bin_dir: self.pg_bin_dir,
            progress: crate::pipeline::Progress::default(),
            compression: crate::pipeline::Compression::new(
                self.zstd_level,
                self.zstd_threads.zstd_threads,
            ),
            interrupt,
            count_rows: self.count_rows,
        })
    }
}

impl RestoreArgs {
    /// Checks the flags and builds the request.
    pub fn into_request(self, interrupt: Interrupt) -> Result<RestoreRequest> {
        let decryption = match (&self.identity, &self.file_key_file) {
            (Some(identity), None) => Decryption::from_identity_file(identity)?,
            (None, Some(key)) => Decryption::from_file_key_file(key)?,
            _ => {
                return Err(Error::invalid_input(
                    "pass exactly one of --identity FILE or --file-key-file FILE",
                ))
            }
        };
        let expect_sha256 = self
            .expect_sha256
            .as_deref()
            .map(parse_sha256)
            .transpose()?;
        let globals = match (&self.globals, &self.identity) {
            (Some(object), Some(identity)) => Some(GlobalsSource {
                source: Location::parse(object, "--globals")?,
                decryption: Decryption::from_identity_file(identity)?,
                expect_sha256: None,
            }),
            (Some(_), None) => {
                return Err(Error::invalid_input(
                    "--globals needs --identity: a file key opens one object only",
                ))
            }
            (None, _) => None,
        };
        Ok(RestoreRequest {
            source: Location::parse(&self.source, "--source")?,
            storage: self.storage.options(),
            decryption,
            database: DatabaseUrl::parse(&self.database_url, env_password())?,
            registry: self.registry.config()?,
            pg_bin_dir: self.pg_bin_dir,
            expect_sha256,
            interrupt,
            progress: crate::pipeline::Progress::default(),
            globals,
            parallel: self
                .jobs
                .zip(self.staging_dir)
                .map(|(jobs, staging_dir)| crate::pipeline::ParallelRestore { jobs, staging_dir }),
        })
    }
}

fn parse_sha256(hex: &str) -> Result<[u8; 32]> {
    dbcrate_core::hex::decode_array(hex).ok_or_else(|| {
        Error::invalid_input("--expect-sha256 must be 64 hex digits (the sha256 printed by backup)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> RunArgs {
        let cli = Cli::try_parse_from(["dbcrate-agent", "run"].iter().chain(args)).unwrap();
        match cli.command {
            Command::Run(args) => args,
            other => panic!("not run: {other:?}"),
        }
    }

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    /// One test for everything that reads DBCRATE_AGENT_DIRECTORY_ROOTS, so that no other
    /// test sees it set.
    #[test]
    fn directory_roots_come_from_the_flag_or_the_environment() {
        const ENV: &str = "DBCRATE_AGENT_DIRECTORY_ROOTS";
        std::env::remove_var(ENV);
        assert!(run_args(&[]).directory_roots.is_empty());
        assert_eq!(
            run_args(&["--directory-root", "/srv/a", "--directory-root", "/srv/b"]).directory_roots,
            paths(&["/srv/a", "/srv/b"])
        );
        std::env::set_var(ENV, "/srv/c,/srv/d");
        let from_env = run_args(&[]).directory_roots;
        let flag_wins = run_args(&["--directory-root", "/srv/a"]).directory_roots;
        std::env::remove_var(ENV);
        assert_eq!(from_env, paths(&["/srv/c", "/srv/d"]));
        assert_eq!(flag_wins, paths(&["/srv/a"]));
        assert_eq!(
            run_args(&["--directory-root", "/srv/a"])
                .options()
                .directory_roots,
            paths(&["/srv/a"])
        );
    }
}
