//! `dbcrate-agent`: the dbcrate agent.
//!
//! Runs on each database host, streams pg_dump through zstd and age into storage the customer owns, and talks to the control plane only outbound. Its commands arrive with the pipeline and enrolment issues; for now it answers --help and --version.

use clap::Parser;

/// the dbcrate agent.
#[derive(Parser, Debug)]
#[command(name = "dbcrate-agent", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
