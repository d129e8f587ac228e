//! `dbcrate-signer`: the dbcrate registry signer.
//!
//! Holds the root and manifest keys of the pg_dump registry, rotates them, and signs
//! manifests. Secret keys are encrypted with a passphrase read from
//! `DBCRATE_SIGNER_PASSPHRASE` or `--passphrase-file`, never from the command line.
//! Procedures: docs/registry-key-rotation.md.

use clap::{Args, Parser, Subcommand};
use dbcrate_core::registry::minisign::PublicKey;
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::unix_now;
use dbcrate_signer::keyfile::{DEFAULT_MEMLIMIT, MIN_MEMLIMIT};
use dbcrate_signer::{verify_tree, Error, KeyDir, Result, Signer};
use std::path::PathBuf;
use std::process::ExitCode;
use zeroize::Zeroizing;

/// The dbcrate registry signer: root and manifest keys, rotation, signing.
#[derive(Parser, Debug)]
#[command(name = "dbcrate-signer", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the root key(s) and root version 1.
    Init {
        #[command(flatten)]
        common: Common,
        /// How many root keys to create.
        #[arg(long, default_value_t = 1)]
        root_keys: u32,
        /// How many of them must sign each root.
        #[arg(long, default_value_t = 1)]
        threshold: u32,
    },
    /// Add a manifest signing key (new, or --public-key FILE) in a new root version.
    AddManifestKey {
        #[command(flatten)]
        common: Common,
        /// A minisign public key file to add instead of generating a key.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// Remove a manifest key (by its id) in a new root version.
    RemoveManifestKey {
        #[command(flatten)]
        common: Common,
        /// The key id as printed (16 hex digits).
        #[arg(long, value_name = "ID")]
        key_id: String,
    },
    /// Write root version N+1 with new root key(s), signed by the old and the new keys.
    RotateRoot {
        #[command(flatten)]
        common: Common,
        /// How many new root keys.
        #[arg(long, default_value_t = 1)]
        root_keys: u32,
        /// How many of them must sign each root.
        #[arg(long, default_value_t = 1)]
        threshold: u32,
    },
    /// Sign the tree's manifest.json with a manifest key.
    SignManifest {
        #[command(flatten)]
        common: Common,
        /// Which manifest key, when the key directory holds several.
        #[arg(long, value_name = "ID")]
        key_id: Option<String>,
        /// Set the manifest's expiry to this many days from now before signing (needed
        /// when the tree was built with an expiry that has passed, e.g. by Nix).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3660))]
        expires_days: Option<u32>,
    },
    /// Check a registry tree as the agent would, from the pinned root key(s).
    Verify {
        /// The registry tree.
        #[arg(long, value_name = "DIR")]
        registry: PathBuf,
        /// Root version 1 public key (RW… or a .pub file); repeat for several.
        #[arg(long = "root-key", value_name = "KEY", required = true)]
        root_keys: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// The registry tree (published as is).
    #[arg(long, value_name = "DIR")]
    registry: PathBuf,
    /// The key directory (kept offline).
    #[arg(long, value_name = "DIR")]
    keys: PathBuf,
    /// File holding the key passphrase (default: $DBCRATE_SIGNER_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// scrypt memory for new keys, MiB (minisign's default 1024; at least 16).
    #[arg(long, default_value_t = DEFAULT_MEMLIMIT >> 20, value_name = "MIB")]
    kdf_memory_mib: u64,
    /// Validity of a new root, in days.
    #[arg(long, default_value_t = 365)]
    root_expires_days: u32,
}

fn passphrase(common: &Common) -> Result<SecretString> {
    // Zeroizing: the raw text (with its newline) is wiped as well as the secret.
    let raw = Zeroizing::new(match &common.passphrase_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Error::io_at("reading the passphrase file", path, e))?,
        None => std::env::var("DBCRATE_SIGNER_PASSPHRASE").map_err(|_| {
            Error::new(
                "no passphrase: set DBCRATE_SIGNER_PASSPHRASE or pass --passphrase-file FILE",
            )
        })?,
    });
    Ok(SecretString::new(
        raw.trim_end_matches(['\n', '\r']).to_string(),
    ))
}

fn run(cli: Cli) -> Result<String> {
    let with = |common: &Common, f: &dyn Fn(&Signer) -> Result<String>| -> Result<String> {
        let memlimit = common.kdf_memory_mib << 20;
        if memlimit < MIN_MEMLIMIT {
            return Err(Error::new("--kdf-memory-mib must be at least 16"));
        }
        let keys = KeyDir::new(&common.keys, passphrase(common)?, memlimit);
        f(&Signer {
            registry: &common.registry,
            keys: &keys,
            now: unix_now(),
            root_days: common.root_expires_days,
        })
    };
    match cli.command {
        Command::Init {
            common,
            root_keys,
            threshold,
        } => with(&common, &|s| {
            let root = s.init(root_keys, threshold)?;
            Ok(format!(
                "root version 1 written; pin its key(s) in every agent \
                 (--registry-root-key):\n{}",
                root.root_keys.join("\n")
            ))
        }),
        Command::AddManifestKey { common, public_key } => with(&common, &|s| {
            let public = match &public_key {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| Error::io_at("reading", path, e))?;
                    Some(PublicKey::parse(&text)?)
                }
                None => None,
            };
            let (root, key) = s.add_manifest_key(public)?;
            Ok(format!(
                "manifest key {} added in root version {}",
                key.id(),
                root.version
            ))
        }),
        Command::RemoveManifestKey { common, key_id } => with(&common, &|s| {
            let root = s.remove_manifest_key(&key_id)?;
            Ok(format!(
                "manifest key {key_id} removed in root version {}",
                root.version
            ))
        }),
        Command::RotateRoot {
            common,
            root_keys,
            threshold,
        } => with(&common, &|s| {
            let root = s.rotate_root(root_keys, threshold)?;
            Ok(format!(
                "root version {} written with new root key(s):\n{}",
                root.version,
                root.root_keys.join("\n")
            ))
        }),
        Command::SignManifest {
            common,
            key_id,
            expires_days,
        } => with(&common, &|s| {
            let m = s.sign_manifest(key_id.as_deref(), expires_days)?;
            Ok(format!("manifest.json version {} signed", m.version))
        }),
        Command::Verify {
            registry,
            root_keys,
        } => {
            let pinned = root_keys
                .iter()
                .map(|k| match std::fs::read_to_string(k) {
                    Ok(text) => PublicKey::parse(&text),
                    Err(_) => PublicKey::parse(k),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let r = verify_tree(&registry, &pinned, unix_now())?;
            Ok(format!(
                "ok: root version {}, manifest version {}, {} artifact(s) checked",
                r.root_version, r.manifest_version, r.artifacts_checked
            ))
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dbcrate-signer: error: {e}");
            ExitCode::FAILURE
        }
    }
}
