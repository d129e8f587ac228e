//! `dbcrate-registry`: assemble and serve the signed pg_dump registry.
//!
//! `build` packages PostgreSQL client installations into artifacts and writes an
//! unsigned manifest.json (sign it with `dbcrate-signer sign-manifest`); `serve` serves
//! the signed tree over HTTPS.

use clap::{Parser, Subcommand};
use dbcrate_core::registry::layout::MANIFEST;
use dbcrate_core::registry::metadata::Manifest;
use dbcrate_core::time::{unix_now, UtcDateTime};
use dbcrate_registry::build::{build, Installation};
use dbcrate_registry::serve::{serve, tls_config};
use dbcrate_registry::{Error, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// The dbcrate registry: assembles and serves signed per-major pg_dump artifacts.
#[derive(Parser, Debug)]
#[command(name = "dbcrate-registry", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Package <input>/<major>-<arch>/{bin,lib} into artifacts and an unsigned manifest.
    Build {
        /// Directory of installations: <major>-<arch>/bin/{pg_dump,pg_dumpall,pg_restore,psql}, optional
        /// lib/, and for an architecture other than this host's a sysroot/ of that
        /// architecture (its loader and C library; needs qemu-user in binfmt_misc).
        #[arg(long, value_name = "DIR")]
        input: PathBuf,
        /// The registry tree to write artifacts/ and manifest.json into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Manifest version (default: one more than the tree's current manifest).
        #[arg(long)]
        manifest_version: Option<u64>,
        /// Days until the manifest expires (re-sign before then).
        #[arg(long, default_value_t = 30)]
        expires_days: u32,
    },
    /// Serve a signed registry tree over HTTPS.
    Serve {
        /// The registry tree.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// PEM certificate chain.
        #[arg(long, value_name = "FILE")]
        tls_cert: PathBuf,
        /// PEM private key.
        #[arg(long, value_name = "FILE")]
        tls_key: PathBuf,
    },
}

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io_at("reading", path, e))
}

fn run(cli: Cli) -> Result<String> {
    match cli.command {
        Command::Build {
            input,
            out,
            manifest_version,
            expires_days,
        } => {
            let version = match manifest_version {
                Some(v) => v,
                None => match std::fs::read(out.join(MANIFEST)) {
                    Ok(bytes) => {
                        Manifest::parse(&bytes)
                            .map_err(|e| Error::new(e.to_string()))?
                            .version
                            + 1
                    }
                    Err(_) => 1,
                },
            };
            let expires =
                UtcDateTime::from_unix(build_clock()? + i64::from(expires_days) * 86_400).rfc3339();
            let manifest = build(&Installation::scan(&input)?, &out, version, &expires)?;
            Ok(format!(
                "manifest.json version {} written with {} artifact(s); sign it with \
                 `dbcrate-signer sign-manifest`",
                manifest.version,
                manifest.artifacts.len()
            ))
        }
        Command::Serve {
            dir,
            listen,
            tls_cert,
            tls_key,
        } => {
            let tls = tls_config(&read(&tls_cert)?, &read(&tls_key)?)?;
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| Error::new(format!("cannot start the runtime: {e}")))?;
            runtime.block_on(async {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| Error::new(format!("cannot listen on {listen}: {e}")))?;
                tracing::info!(%listen, "serving the registry");
                serve(dir, listener, tls).await
            })?;
            Ok(String::new())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run(cli) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dbcrate-registry: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The build's "now": `SOURCE_DATE_EPOCH` when set (reproducible builds, e.g. Nix, where
/// it is 1980 and the signer later sets a real expiry), else the clock.
fn build_clock() -> Result<i64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) => text.trim().parse::<i64>().map_err(|_| {
            Error::new(format!(
                "SOURCE_DATE_EPOCH={text:?} is not a number of seconds since 1970; unset it \
                 or give one"
            ))
        }),
        Err(_) => Ok(unix_now()),
    }
}
