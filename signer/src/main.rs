//! `dbcrate-signer`: the dbcrate registry signer.
//!
//! Holds the root and manifest keys of the pg_dump registry. Its commands arrive with the registry issue; for now it answers --help and --version.

use clap::Parser;

/// the dbcrate registry signer.
#[derive(Parser, Debug)]
#[command(name = "dbcrate-signer", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
