//! `dbcrate-control`: the dbcrate control plane.
//!
//! Schedules backups, holds envelope-encrypted secrets, enrols agents, applies retention
//! and keeps the audit log. Every command checks its configuration first and exits
//! non-zero with the fix when something is missing; it never runs degraded.

use clap::{Parser, Subcommand};
use dbcrate_control::config::Config;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::error::{Error, Result};
use dbcrate_control::server::agent_tls::{AgentTls, AgentTlsHandle};
use dbcrate_control::{audit, secrets};
use std::path::PathBuf;
use std::process::ExitCode;

/// The dbcrate control plane.
#[derive(Parser, Debug)]
#[command(name = "dbcrate-control", version, about, long_about = None, arg_required_else_help = true)]
struct Cli {
    /// Data directory (default $DBCRATE_DATA_DIR or /var/lib/dbcrate-control).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTPS API (after the boot checks and TLS material).
    Serve,
    /// Create or upgrade the database schema.
    Migrate,
    /// Run the boot checks (master keys, database, schema, key ids) and exit.
    Check,
    /// Create the first organisation and its owner; prints a one-time password once.
    Init {
        /// The organisation's name.
        #[arg(long)]
        org: String,
        /// The owner's e-mail address (their sign-in name).
        #[arg(long)]
        owner: String,
    },
    /// Re-wrap every secret's data key under the active (first) master key.
    RotateMasterKey,
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify every organisation's hash chain; exit 1 at the first break.
    Verify {
        /// Also check heads saved earlier by `audit heads`: each chain must still hold
        /// that row with that hash (catches the newest rows being cut off).
        #[arg(long, value_name = "FILE")]
        expect_heads: Option<std::path::PathBuf>,
    },
    /// Print each chain's newest row (`<chain> <sequence> <hash>`), to keep elsewhere.
    Heads,
}

fn now() -> String {
    dbcrate_core::time::UtcDateTime::now().rfc3339()
}

/// The boot checks shared by every command that uses secrets.
async fn open_checked(config: &Config) -> Result<(Db, MasterKeys)> {
    let keys = MasterKeys::from_env().map_err(Error::internal)?;
    if config.is_embedded() {
        config.ensure_data_dir()?;
    }
    let db = Db::connect(&config.database_url)
        .await
        .map_err(|e| Error::internal(format!("{e} ({})", config.database_for_display())))?;
    db.check_schema()
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    secrets::check_master_keys(&db, &keys).await?;
    dbcrate_control::secrets::audit_key::load(&db, &keys, &now()).await?;
    Ok((db, keys))
}

/// Prints a line to stdout; a closed stdout (a supervisor that stopped reading) must
/// not take the server down, so write errors are ignored.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Binds `addr`, with the variable to change named in the error.
async fn bind(addr: std::net::SocketAddr, variable: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {addr}: {e}; set {variable}")))
}

/// Installs the SIGINT and SIGTERM handlers now, before the listeners are announced, so
/// a signal sent the moment "listening on" is printed stops the server cleanly (tokio's
/// handlers are installed when first polled; one installed late lets the default action
/// kill the process instead). The answer turns true on the first signal.
fn install_shutdown_signals() -> Result<tokio::sync::watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind| {
        signal(kind).map_err(|e| Error::internal(format!("cannot handle signals: {e}")))
    };
    let (mut term, mut interrupt) = (
        install(SignalKind::terminate())?,
        install(SignalKind::interrupt())?,
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
        let _ = stop.send(true);
    });
    Ok(stopped)
}

/// Completes once a shutdown signal has arrived.
async fn shutdown_signal(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Boot checks, TLS, then the API and agent listeners until SIGINT or SIGTERM.
async fn serve(config: &Config) -> Result<String> {
    let (db, keys) = open_checked(config).await?;
    let addr = config.listen_addr()?;
    let agent_addr = config.agent_listen_addr()?;
    let agent_settings = config.agent_settings()?;
    let reach = std::sync::Arc::new(config.reach_policy()?);
    let tls_source = config.tls_source()?;
    if tls_source.generate_if_missing {
        config.ensure_data_dir()?;
    }
    let tls = dbcrate_control::server::tls::load(&tls_source)?;
    let keys = std::sync::Arc::new(keys);
    let agent_tls = AgentTls::new(db.clone(), keys.clone(), &tls_source).await?;
    let listener = bind(addr, "DBCRATE_LISTEN").await?;
    let agent_listener = bind(agent_addr, "DBCRATE_AGENT_LISTEN").await?;
    let metrics = config.metrics_settings()?;
    let metrics_listener = match metrics.listen {
        Some(addr) => Some(bind(addr, "DBCRATE_METRICS_LISTEN").await?),
        None => None,
    };
    let local = |l: &tokio::net::TcpListener| {
        l.local_addr()
            .map_err(|e| Error::internal(format!("the listening socket: {e}")))
    };
    let (bound, agent_bound) = (local(&listener)?, local(&agent_listener)?);
    if tls.generated {
        say(&format!(
            "generated a self-signed TLS certificate: {}",
            tls_source.cert_file.display()
        ));
    }
    say(&format!(
        "TLS certificate SHA-256 fingerprint: {}",
        tls.fingerprint
    ));
    let stopped = install_shutdown_signals()?;
    say(&format!("agents connect to https://{agent_bound}"));
    if let Some(listener) = &metrics_listener {
        say(&format!("metrics on http://{}/metrics", local(listener)?));
    }
    say(&format!("listening on https://{bound}"));
    if let Some(listener) = metrics_listener {
        let access = dbcrate_control::metrics::MetricsAccess {
            token: metrics.token.map(std::sync::Arc::new),
        };
        tokio::spawn(dbcrate_control::server::serve_plain(
            listener,
            dbcrate_control::metrics::router(db.clone(), access),
            shutdown_signal(stopped.clone()),
        ));
    }
    // What the dashboard's enrolment command names.
    let public_url =
        (agent_settings.public_url.clone()).unwrap_or_else(|| format!("https://{agent_bound}"));
    let agents = dbcrate_control::config::AgentSettings {
        public_url: Some(public_url),
        server_fingerprint: Some(tls.fingerprint.clone()),
        ..agent_settings
    };
    let state = dbcrate_control::http::AppState {
        db,
        keys,
        agents,
        agent_tls: Some(agent_tls.clone()),
        reach,
        job_wakeups: dbcrate_control::backups::jobs::wakeups::JobWakeups::new(),
    };
    agent_tls.spawn_refresher();
    state.job_wakeups.spawn_watcher(state.db.clone());
    dbcrate_control::housekeeping::spawn_loop(
        state.db.clone(),
        state.keys.clone(),
        state.reach.clone(),
        std::time::Duration::from_secs(10),
    );
    let agents = dbcrate_control::server::serve_with_limits(
        agent_listener,
        AgentTlsHandle(agent_tls),
        dbcrate_control::http::agent_router(state.clone()),
        state.agents.connection_limits(),
        shutdown_signal(stopped.clone()),
    );
    let api = dbcrate_control::server::serve(
        listener,
        tls.config,
        dbcrate_control::web::app(state),
        shutdown_signal(stopped),
    );
    tokio::join!(agents, api);
    Ok("stopped".into())
}

async fn run(cli: Cli) -> Result<String> {
    let config = Config::resolve(cli.data_dir);
    match cli.command {
        Command::Serve => serve(&config).await,
        Command::Migrate => migrate(&config).await,
        Command::Check => check(&config).await,
        Command::Init { org, owner } => init(&config, &org, &owner).await,
        Command::RotateMasterKey => rotate_master_key(&config).await,
        Command::Audit {
            command: AuditCommand::Verify { expect_heads },
        } => verify_audit(&config, expect_heads.as_deref()).await,
        Command::Audit {
            command: AuditCommand::Heads,
        } => audit_heads(&config).await,
    }
}

/// `migrate`: creates or upgrades the schema (no master key needed).
async fn migrate(config: &Config) -> Result<String> {
    if config.is_embedded() {
        config.ensure_data_dir()?;
    }
    let db = Db::connect(&config.database_url)
        .await
        .map_err(|e| Error::internal(format!("{e} ({})", config.database_for_display())))?;
    let applied = db
        .migrate()
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(format!(
        "schema at version {} ({applied} migration(s) applied)",
        dbcrate_control::db::binary_schema_version()
    ))
}

/// `check`: every boot check `serve` makes, without serving.
async fn check(config: &Config) -> Result<String> {
    open_checked(config).await?;
    config.listen_addr()?;
    config.agent_listen_addr()?;
    config.metrics_settings()?;
    config.agent_settings()?;
    config.reach_policy()?;
    let tls_source = config.tls_source()?;
    let tls = if tls_source.generate_if_missing
        && !tls_source.cert_file.exists()
        && !tls_source.key_file.exists()
    {
        format!(
            "a self-signed certificate will be generated at {} on first serve",
            tls_source.cert_file.display()
        )
    } else {
        let material = dbcrate_control::server::tls::load(&tls_source)?;
        format!("TLS certificate SHA-256 {}", material.fingerprint)
    };
    Ok(format!(
        "ok: master keys, database ({}), schema and key ids; {tls}",
        config.database_for_display()
    ))
}

/// `init`: the first organisation and its owner, whose one-time password is shown once.
async fn init(config: &Config, org: &str, owner: &str) -> Result<String> {
    let (db, keys) = open_checked(config).await?;
    let done = dbcrate_control::setup::init(&db, &keys, org, owner, &now()).await?;
    Ok(format!(
        "organisation {} ({})\nrecipient (what backups are encrypted to): {}\n\
         owner {}: one-time password {}\n(shown once; it must be changed at first sign-in)",
        done.org.name,
        done.org.id,
        done.org.recipient,
        owner.trim().to_ascii_lowercase(),
        done.one_time_password.expose_secret()
    ))
}

/// `rotate-master-key`: re-wraps every data key under the active master key.
async fn rotate_master_key(config: &Config) -> Result<String> {
    let (db, keys) = open_checked(config).await?;
    let n = secrets::rotate_master_key(&db, &keys, "system:cli", &now(), usize::MAX).await?;
    Ok(format!(
        "{n} secret(s) re-wrapped under master key {}; the other keys can be removed",
        keys.active().id()
    ))
}

/// `audit verify`: every chain, then the heads saved earlier (if a file is given).
async fn verify_audit(config: &Config, expect_heads: Option<&std::path::Path>) -> Result<String> {
    let saved = match expect_heads {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::invalid(format!("cannot read {}: {e}", path.display())))?;
            dbcrate_control::audit::heads::parse(&text)
                .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))?
        }
        None => Vec::new(),
    };
    let (db, _) = open_checked(config).await?;
    let chains = audit_chains(&db).await?;
    let verifier = audit::Verifier::new(&db).await?;
    let mut total = 0;
    for chain in &chains {
        let rows = audit::rows(&db, chain).await?;
        total += verifier.verify_rows(&rows).map_err(|b| {
            Error::internal(format!(
                "audit chain of organisation {chain} is broken at sequence {}: {}",
                b.seq, b.reason
            ))
        })?;
    }
    for head in &saved {
        let rows = audit::rows(&db, &head.chain).await?;
        dbcrate_control::audit::heads::check(head, &rows).map_err(Error::internal)?;
    }
    let heads = if expect_heads.is_some() {
        format!("; {} saved head(s) found", saved.len())
    } else {
        String::new()
    };
    Ok(format!(
        "audit log verified: {total} row(s) in {} chain(s){heads}",
        chains.len()
    ))
}

/// `audit heads`: each chain's newest row, one line each.
async fn audit_heads(config: &Config) -> Result<String> {
    let (db, _) = open_checked(config).await?;
    let mut lines = Vec::new();
    for chain in audit_chains(&db).await? {
        let rows = audit::rows(&db, &chain).await?;
        if let Some(head) = dbcrate_control::audit::heads::Head::of(&rows) {
            lines.push(head.line());
        }
    }
    Ok(lines.join("\n"))
}

/// Every audit chain in the database.
async fn audit_chains(db: &Db) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT org_id FROM audit_log ORDER BY org_id")
            .fetch_all(db.pool())
            .await?,
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dbcrate-control: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(message) => {
            say(&message);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dbcrate-control: error: {e}");
            ExitCode::FAILURE
        }
    }
}
