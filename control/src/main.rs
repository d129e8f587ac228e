//! `dbcrate-control`: the dbcrate control plane.
//!
//! Schedules backups, holds envelope-encrypted secrets, enrols agents, applies retention and keeps the audit log. Its commands arrive with the control-plane issue; for now it answers --help and --version.

use clap::Parser;

/// the dbcrate control plane.
#[derive(Parser, Debug)]
#[command(name = "dbcrate-control", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
