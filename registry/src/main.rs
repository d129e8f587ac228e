//! `dbcrate-registry`: the dbcrate pg_dump registry.
//!
//! Assembles and serves the signed per-major pg_dump artifacts. Its commands arrive with the registry issue; for now it answers --help and --version.

use clap::Parser;

/// the dbcrate pg_dump registry.
#[derive(Parser, Debug)]
#[command(name = "dbcrate-registry", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
