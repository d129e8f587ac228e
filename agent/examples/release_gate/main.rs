//! The release gate: a candidate static `dbcrate-agent` binary, per architecture, against
//! every PostgreSQL major and both kinds of object storage, as a customer would run it.
//!
//! For each arch × major × destination (Garage S3, OpenSSH SFTP): a control plane (in
//! this process, over mutual TLS on loopback) enrols the candidate with a one-time token;
//! the candidate runs with no PostgreSQL tools on its PATH and takes pg_dump/pg_restore
//! of the server's major and its own architecture from a signed registry built by
//! `dbcrate-registry build`; a schedule fires and the candidate backs up a varied
//! database; the object is downloaded with a client that is not dbcrate (curl with
//! SigV4, the stock `sftp`), decrypted with stock `age` and the organisation's exported
//! recovery key, `zstd -d`, `pg_restore`d into a fresh server of the same major and
//! compared with the source; a managed restore through the candidate is compared too.
//!
//! arm64 candidates run under qemu-user (binfmt_misc) as an arm64 host would run them:
//! the arm64 pg_dump/pg_restore come from Debian's arm64 packages, packaged into the
//! registry from a sysroot, and the arm64 C library they load is that sysroot's
//! (`QEMU_LD_PREFIX`). The PostgreSQL servers, Garage and sshd stay amd64.
//!
//! Run it through `scripts/release-gate`, which builds the candidates and provisions the
//! tools; docs/release-gate.md says what a pass means.

// The integration tests' shared pieces (it allows its own unused items).
#[path = "../../tests/common/mod.rs"]
mod common;

mod args;
mod dataset;
mod major;
mod report;
mod stock;
mod world;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("release-gate: {message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let world = match world::World::start(&args) {
        Ok(world) => std::sync::Arc::new(world),
        Err(message) => {
            eprintln!("release-gate: cannot set up: {message}");
            return ExitCode::from(1);
        }
    };
    let mut rows = Vec::new();
    for candidate in &args.candidates {
        for &major in &args.majors {
            eprintln!("release-gate: {} PostgreSQL {major} ...", candidate.arch);
            let found = major::gate(world.clone(), candidate.clone(), major);
            for row in &found {
                eprintln!("release-gate:   {}", row.line());
            }
            rows.extend(found);
        }
    }
    let summary = report::Summary::new(&args, rows);
    println!("{}", summary.table());
    if let Err(message) = summary.write(&args) {
        eprintln!("release-gate: {message}");
        return ExitCode::from(1);
    }
    if summary.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
