//! `dbcrate-agent`: the dbcrate agent.
//!
//! Runs on each database host. In this standalone mode it backs up and restores on
//! command; later it also takes jobs from the control plane, outbound only. stdout
//! carries only the JSON result, so scripts can parse it; logs go to stderr
//! (`DBCRATE_LOG=debug|info|warn|error`, default info).

use clap::Parser;
use dbcrate_agent::cli::{Cli, Command};
use dbcrate_agent::interrupt::Interrupt;
use dbcrate_agent::pipeline::{run_backup, run_restore};
use dbcrate_agent::{Error, ErrorKind};
use std::io::IsTerminal;
use std::process::ExitCode;

fn init_logging() {
    let level = match std::env::var("DBCRATE_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("warn") => tracing::Level::WARN,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(level)
        .with_target(false)
        .init();
}

async fn run(cli: Cli) -> Result<String, Error> {
    let interrupt = Interrupt::from_signals();
    let json = match cli.command {
        Command::Backup(args) => {
            let report = run_backup(args.into_request(interrupt)?).await?;
            serde_json::to_string(&report)
        }
        Command::Restore(args) => {
            let url = args.source.clone();
            let report = run_restore(args.into_request(interrupt)?, &url).await?;
            serde_json::to_string(&report)
        }
        Command::Enroll(args) => {
            serde_json::to_string(&dbcrate_agent::control::enroll::enroll(&args).await?)
        }
        Command::Run(args) => serde_json::to_string(
            &dbcrate_agent::control::run::run(&args.options(), interrupt).await?,
        ),
    };
    json.map_err(|e| Error::new(ErrorKind::InvalidInput, format!("encoding the report: {e}")))
}

/// musl's allocator made the static agent's backups about 1.1x slower than the glibc
/// build's (docs/benchmarks.md); mimalloc brings them level. glibc builds keep glibc's.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dbcrate-agent: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Every cleanup has been awaited inside `run`; a thread still blocked on a silent
    // pipe after an abort must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dbcrate-agent: error: {e}");
            match e.kind() {
                ErrorKind::InvalidInput => ExitCode::from(2),
                ErrorKind::Interrupted => ExitCode::from(130),
                ErrorKind::Identity => ExitCode::from(3),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
