//! Set-up that the control plane's test binaries share (each `tests/*.rs`, and
//! `tests/api/` through `#[path]`).
//!
//! Why here and not in dbcrate-testkit: it calls the control plane's own types
//! (`Db`, `MasterKeys`, the audit chain key's custody), and the kit does not depend on
//! the control plane, whose tests depend on the kit. What needs no control-plane type
//! (the test master keys, the SQLite URL, the audit-log and secret scans) is in the kit.
#![allow(dead_code)] // Each test binary uses a part.

pub mod receiver;

use dbcrate_control::accounts::roles::Role;
use dbcrate_control::accounts::users;
use dbcrate_control::backups::databases::NewDatabase;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_core::secret::SecretString;
use dbcrate_testkit::{sqlite_url, PgServer, TempDir, TEST_MASTER_KEY};

/// The test master keys (`mk1`), with the audit chain key loaded into `db` — made and
/// sealed at `now` (RFC 3339) on first use — as the control plane does at boot.
pub async fn keys_with_audit_key(db: &Db, now: &str) -> MasterKeys {
    let keys = MasterKeys::parse(TEST_MASTER_KEY).unwrap();
    dbcrate_control::secrets::audit_key::load(db, &keys, now)
        .await
        .unwrap();
    keys
}

/// The control plane's database on SQLite, in `dir` (the embedded default).
pub async fn sqlite_db(dir: &TempDir) -> Db {
    Db::connect(&sqlite_url(&dir.path().join("control.db")))
        .await
        .unwrap()
}

/// The control plane's database on PostgreSQL: a new database `control` on `server`.
pub async fn postgres_db(server: &PgServer) -> Db {
    server.create_database("control").unwrap();
    Db::connect(&server.url("control")).await.unwrap()
}

/// A database on a host the tests never reach (`db.example:5432`, database `app`, user
/// `backup`, TLS required, no password) reached by `agent_id`, for tests of the control
/// plane's bookkeeping; change a field with `NewDatabase { dbname: …, ..remote_database(…) }`.
pub fn remote_database<'a>(name: &'a str, agent_id: &'a str) -> NewDatabase<'a> {
    NewDatabase {
        name,
        host: "db.example",
        port: 5432,
        dbname: "app",
        username: "backup",
        tls_mode: "require",
        password: None,
        agent_id,
    }
}

/// Creates the user `email` with `password` (no change asked at first sign-in) as an
/// owner of `org_id` at `now` (RFC 3339), through the library — as another tenant's
/// owner would be; returns the user's id.
pub async fn owner_of(db: &Db, org_id: &str, email: &str, password: &str, now: &str) -> String {
    let mut conn = db.begin().await.unwrap();
    let password = SecretString::new(password.into());
    let user = users::create_in(&mut conn, email, &password, false, now)
        .await
        .unwrap();
    users::add_member_in(&mut conn, org_id, &user, Role::Owner, "system:test", now)
        .await
        .unwrap();
    dbcrate_control::db::end_write(conn, Ok::<(), sqlx::Error>(()))
        .await
        .unwrap();
    user
}

/// Runs `$body(db)` on a fresh SQLite database and on a fresh PostgreSQL one, as two
/// tests, so that each test file states its pair in one line instead of repeating the
/// set-up. The database is not migrated: the body does that (or tests the lack of it).
/// An optional attribute replaces `#[tokio::test]`, e.g. for a multi-threaded runtime.
#[macro_export]
macro_rules! sqlite_and_postgres {
    ($sqlite:ident, $postgres:ident, $body:path) => {
        $crate::sqlite_and_postgres!(
            #[tokio::test]
            $sqlite,
            $postgres,
            $body
        );
    };
    (#[$test:meta] $sqlite:ident, $postgres:ident, $body:path) => {
        #[$test]
        async fn $sqlite() {
            let dir = dbcrate_testkit::TempDir::new(stringify!($sqlite)).unwrap();
            $body($crate::common::sqlite_db(&dir).await).await;
        }
        #[$test]
        async fn $postgres() {
            let server = dbcrate_testkit::PgServer::start(17).unwrap();
            $body($crate::common::postgres_db(&server).await).await;
        }
    };
}

/// The current TOTP code for a base32 seed, `ahead` steps in the future: what an
/// authenticator app would show (the API and the dashboard tests both enter codes).
pub fn totp_code(seed_base32: &str, ahead: i64) -> String {
    let seed = data_encoding::BASE32_NOPAD
        .decode(seed_base32.as_bytes())
        .unwrap();
    let step = dbcrate_control::accounts::totp::step_of(dbcrate_core::time::unix_now()) + ahead;
    format!(
        "{:06}",
        dbcrate_control::accounts::totp::code_at(&seed, step)
    )
}

/// A backup as a succeeded job records it: for tests of what lists and counts backups.
pub struct BackupRow<'a> {
    pub org: &'a str,
    pub agent: &'a str,
    pub database: &'a str,
    pub destination: &'a str,
    /// The schedule that made it, if one did.
    pub schedule: Option<&'a str>,
    pub finished_at: i64,
    /// Bytes stored.
    pub size: i64,
    /// The agent's measured duration, if reported.
    pub duration_ms: Option<i64>,
}

/// Inserts a succeeded backup job and its recorded backup (started and finished at
/// `row.finished_at`); the backup's id.
pub async fn record_backup(db: &Db, row: &BackupRow<'_>) -> String {
    let job = dbcrate_control::error::new_id("job").unwrap();
    sqlx::query(
        "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, \
         agent_id, state, attempt, max_attempts, created_at, finished_at, progress_bytes, \
         phase) VALUES ($1, $2, 'backup', $3, $4, $5, $6, 'succeeded', 1, 3, $7, $7, 0, 'done')",
    )
    .bind(&job)
    .bind(row.org)
    .bind(row.schedule)
    .bind(row.database)
    .bind(row.destination)
    .bind(row.agent)
    .bind(row.finished_at)
    .execute(db.pool())
    .await
    .unwrap();
    let id = dbcrate_control::error::new_id("bkp").unwrap();
    sqlx::query(
        "INSERT INTO backups (id, org_id, job_id, schedule_id, database_id, destination_id, \
         object_key, size, sha256, started_at, finished_at, pg_server_version, \
         pg_dump_version, delete_attempts, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, '17', '17', 0, $11)",
    )
    .bind(&id)
    .bind(row.org)
    .bind(&job)
    .bind(row.schedule)
    .bind(row.database)
    .bind(row.destination)
    .bind(format!("db/{job}.pgdump.zst.age"))
    .bind(row.size)
    .bind("00".repeat(32))
    .bind(row.finished_at)
    .bind(row.duration_ms)
    .execute(db.pool())
    .await
    .unwrap();
    id
}
