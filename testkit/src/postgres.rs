//! A real PostgreSQL server of one major, with that major's client tools.

use crate::deps::Deps;
use crate::ports::free_port;
use crate::process::{run, ServerProcess};
use crate::random::random_hex;
use crate::tempdir::TempDir;
use crate::user::ServiceUser;
use crate::{KitError, Result};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// How often start-up is retried when another process took the chosen port.
const START_ATTEMPTS: usize = 3;

/// A PostgreSQL server on 127.0.0.1, stopped (fast shutdown) and deleted on drop.
///
/// The superuser `postgres` has a random password and every connection, local ones
/// included, needs it (scram-sha-256), as on a real host.
pub struct PgServer {
    // Field order matters: the process stops before its directory is removed.
    process: ServerProcess,
    dir: TempDir,
    major: u32,
    port: u16,
    password: String,
    bin_dir: PathBuf,
    /// The `postgres` binary, to start the server again after [`Self::stop`].
    postgres: PathBuf,
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("major", &self.major)
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .field("password", &"<redacted>")
            .finish()
    }
}

impl PgServer {
    /// Starts a server of `major` from the default cache.
    pub fn start(major: u32) -> Result<Self> {
        Self::start_with(&Deps::from_env(), major)
    }

    /// Starts a server of `major` from the binaries in `deps`.
    pub fn start_with(deps: &Deps, major: u32) -> Result<Self> {
        let bin_dir = deps.pg_bin_dir(major)?;
        let initdb = deps.pg_tool(major, "initdb")?;
        let postgres = deps.pg_tool(major, "postgres")?;
        deps.pg_tool(major, "pg_restore")?;
        let user = ServiceUser::for_servers()?;

        let dir = TempDir::new(&format!("pg{major}"))?;
        user.give(dir.path())?;
        let password = random_hex(16)?;
        let pwfile = dir.path().join("pwfile");
        write_private(&pwfile, &password, &user)?;
        let data = dir.path().join("data");
        let mut init = Command::new(&initdb);
        init.arg("--pgdata")
            .arg(&data)
            .args([
                "--username=postgres",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
            ])
            .args(["--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(dir.path());
        user.apply(&mut init);
        run(&format!("initdb of PostgreSQL {major}"), &mut init)?;
        std::fs::remove_file(&pwfile).map_err(|e| KitError::io("removing pwfile", e))?;

        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            match spawn_postgres(&postgres, &dir, port, major, &user) {
                Ok(process) => {
                    return Ok(Self {
                        process,
                        dir,
                        major,
                        port,
                        password,
                        bin_dir,
                        postgres,
                    })
                }
                Err((e, log)) if log.contains("already in use") => last_error = Some(e),
                Err((e, _)) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| KitError::new("PostgreSQL did not start")))
    }

    /// Stops the server (a fast shutdown: connections are cut, as when a control plane's
    /// database restarts); [`Self::start_again`] brings it back.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on its data directory and port after [`Self::stop`].
    pub fn start_again(&mut self) -> Result<()> {
        let user = ServiceUser::for_servers()?;
        self.process = spawn_postgres(&self.postgres, &self.dir, self.port, self.major, &user)
            .map_err(|(e, _)| e)?;
        Ok(())
    }

    /// The major version this server runs.
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password (`postgres`).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A connection URL for `database` that includes the password, as a user would give
    /// it to the agent.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// A connection URL for `database` without the password (pair it with
    /// `PGPASSWORD`), for command lines, which other users can read.
    pub fn url_without_password(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The directory with this major's `pg_dump`, `pg_restore` and server binaries.
    pub fn bin_dir(&self) -> &PathBuf {
        &self.bin_dir
    }

    /// This major's `pg_dump`.
    pub fn pg_dump(&self) -> PathBuf {
        self.bin_dir.join("pg_dump")
    }

    /// This major's `pg_restore`.
    pub fn pg_restore(&self) -> PathBuf {
        self.bin_dir.join("pg_restore")
    }

    /// A command for one of this major's client tools with host, port, user and
    /// password set in its environment (never on its command line).
    pub fn client_command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(tool));
        self.client_env(&mut cmd);
        cmd
    }

    /// Points `cmd`'s libpq environment at this server.
    pub fn client_env(&self, cmd: &mut Command) {
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres")
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE")
            .env_remove("PGDATABASE");
    }

    /// Runs `sql` in `database` with psql and returns its unaligned, tuples-only output.
    /// Stops at the first error.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let mut cmd = self.client_command("psql");
        cmd.args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            database,
        ]);
        cmd.arg("-c").arg(sql);
        run(&format!("psql on PostgreSQL {}", self.major), &mut cmd)
            .map(|out| out.trim_end().to_string())
    }

    /// Creates an empty database.
    pub fn create_database(&self, name: &str) -> Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .map(|_| ())
    }

    /// The server's log so far (for diagnosing a failed test).
    pub fn log(&self) -> String {
        self.process.log_text()
    }
}

/// Starts `postgres` on the data directory under `dir` at `port` and waits until it
/// accepts connections; a failure comes with the server's log (to tell a port taken
/// meanwhile from other failures).
fn spawn_postgres(
    postgres: &std::path::Path,
    dir: &TempDir,
    port: u16,
    major: u32,
    user: &ServiceUser,
) -> std::result::Result<ServerProcess, (KitError, String)> {
    let data = dir.path().join("data");
    let mut cmd = Command::new(postgres);
    cmd.arg("-D").arg(&data).arg("-p").arg(port.to_string());
    for setting in [
        "listen_addresses=127.0.0.1",
        "unix_socket_directories=",
        // A test server trades durability for speed; dumps are unaffected.
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "shared_buffers=32MB",
        "max_connections=30",
    ] {
        cmd.arg("-c").arg(setting);
    }
    cmd.current_dir(dir.path());
    user.apply(&mut cmd);
    let log = dir.path().join(format!("postgres-{port}.log"));
    let mut process = ServerProcess::spawn(&format!("PostgreSQL {major}"), cmd, &log, libc::SIGINT)
        .map_err(|e| (e, String::new()))?;
    let pid_file = data.join("postmaster.pid");
    match process.wait_until(Duration::from_secs(60), || is_ready(&pid_file)) {
        Ok(()) => Ok(process),
        Err(e) => Err((e, process.log_text())),
    }
}

/// The postmaster writes "ready" into line 8 of postmaster.pid once it accepts
/// connections (PostgreSQL 10 and later).
fn is_ready(pid_file: &std::path::Path) -> bool {
    std::fs::read_to_string(pid_file)
        .map(|text| text.lines().nth(7).is_some_and(|l| l.trim() == "ready"))
        .unwrap_or(false)
}

/// Writes a file only its owner (the server user) can read.
fn write_private(path: &std::path::Path, contents: &str, user: &ServiceUser) -> Result<()> {
    std::fs::write(path, contents)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)))
        .map_err(|e| KitError::io(format!("writing {}", path.display()), e))?;
    user.give(path)
}
