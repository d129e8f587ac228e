//! What a benchmark database holds. The agent's speed depends on the data: compression
//! dominates on data that compresses well, so each dataset stresses the pipeline
//! differently.
//!
//! - `mixed`: text, numbers and jsonb — compressible like real data, not trivially.
//! - `text`: a table of text that compresses very well (hashes and repeated words), where
//!   zstd's work per dumped byte is highest.
//! - `tables`: the `mixed` rows spread over eight tables, each with two secondary
//!   indexes — what a parallel restore (`--jobs`) can load and index side by side, where
//!   one big table gives it nothing to share out.
//! - `pgbench`: pgbench's four tables (`pgbench -i` at the scale that gives the size:
//!   about 15 MiB per scale unit; scale 30 ≈ 450 MiB), generated with the same SQL
//!   pgbench's own initialisation runs, so no pgbench binary is needed.

use dbcrate_testkit::{KitError, PgServer};

/// A benchmark dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Mixed,
    Tables,
    Text,
    Pgbench,
}

impl Dataset {
    /// `--dataset NAME`.
    pub fn parse(name: &str) -> Result<Self, KitError> {
        match name {
            "mixed" => Ok(Self::Mixed),
            "tables" => Ok(Self::Tables),
            "text" => Ok(Self::Text),
            "pgbench" => Ok(Self::Pgbench),
            other => Err(KitError::new(format!(
                "--dataset {other}: use mixed, tables, text or pgbench"
            ))),
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mixed => "mixed",
            Self::Tables => "tables",
            Self::Text => "text",
            Self::Pgbench => "pgbench",
        }
    }

    /// Fills database `bench` of `server` with about `mib` MiB.
    pub fn generate(self, server: &PgServer, mib: u64) -> Result<(), KitError> {
        match self {
            Self::Mixed => batches(server, mib, MIXED_TABLE, MIXED_ROWS, "items"),
            Self::Tables => tables(server, mib),
            Self::Text => batches(server, mib, TEXT_TABLE, TEXT_ROWS, "notes"),
            Self::Pgbench => pgbench(server, mib),
        }
    }
}

const MIXED_TABLE: &str = "CREATE TABLE items (id bigint PRIMARY KEY, name text, payload jsonb, \
    note text, amount numeric(12,2), created timestamptz)";
const MIXED_ROWS: &str = "INSERT INTO items SELECT g, 'item ' || g || ' ' || \
    substr(md5(g::text), 1, 8), jsonb_build_object('sku', g % 5000, 'tags', \
    jsonb_build_array('a' || g % 17, 'b' || g % 23), 'h', md5((g * 7)::text)), \
    repeat(substr(md5(g::text), 1, 12) || ' ', 1 + g % 6), (g % 100000) * 1.37, \
    TIMESTAMPTZ '2026-01-01' + g * interval '1 second' FROM generate_series({lo}, {hi}) g";

const TEXT_TABLE: &str = "CREATE TABLE notes (id bigint PRIMARY KEY, body text)";
/// Hashes and repeated words: much repetition, which zstd works hardest on per byte.
const TEXT_ROWS: &str = "INSERT INTO notes SELECT g, md5(g::text) || ' ' || \
    repeat('the quick brown fox jumps over the lazy dog ', 2 + g % 5) || md5((g % 1000)::text) \
    FROM generate_series({lo}, {hi}) g";

/// Creates `create`, then inserts `rows` (with `{lo}`/`{hi}` for the batch's ids) in
/// batches of 200,000 until the database holds `mib` MiB.
fn batches(
    server: &PgServer,
    mib: u64,
    create: &str,
    rows: &str,
    table: &str,
) -> Result<(), KitError> {
    server.psql("bench", create)?;
    let per_batch = 200_000u64;
    let mut batch = 0u64;
    while size(server)? < mib << 20 {
        let lo = batch * per_batch + 1;
        let hi = lo + per_batch - 1;
        let insert = rows
            .replace("{lo}", &lo.to_string())
            .replace("{hi}", &hi.to_string());
        server.psql("bench", &insert)?;
        batch += 1;
    }
    server
        .psql("bench", &format!("VACUUM ANALYZE {table}"))
        .map(|_| ())
}

/// Tables of the `tables` dataset.
const TABLES: u64 = 8;

/// The mixed rows in [`TABLES`] tables, a batch each in turn, then indexed on `name` and
/// `created` besides the primary key.
fn tables(server: &PgServer, mib: u64) -> Result<(), KitError> {
    for t in 0..TABLES {
        server.psql(
            "bench",
            &MIXED_TABLE.replace("items", &format!("items_{t}")),
        )?;
    }
    let per_batch = 100_000u64;
    let mut batch = 0u64;
    while size(server)? < mib << 20 {
        let lo = batch * per_batch + 1;
        let insert = MIXED_ROWS
            .replace("items", &format!("items_{}", batch % TABLES))
            .replace("{lo}", &lo.to_string())
            .replace("{hi}", &(lo + per_batch - 1).to_string());
        server.psql("bench", &insert)?;
        batch += 1;
    }
    for t in 0..TABLES {
        for sql in [
            format!("CREATE INDEX ON items_{t} (name)"),
            format!("CREATE INDEX ON items_{t} (created)"),
            format!("VACUUM ANALYZE items_{t}"),
        ] {
            server.psql("bench", &sql)?;
        }
    }
    Ok(())
}

/// pgbench's tables at the scale that gives about `mib` MiB (at least scale 1), made as
/// `pgbench -i` makes them (server-side generation).
fn pgbench(server: &PgServer, mib: u64) -> Result<(), KitError> {
    let scale = (mib / 15).max(1);
    server.psql(
        "bench",
        "CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)); \
         CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)); \
         CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)); \
         CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, \
         filler char(22))",
    )?;
    server.psql(
        "bench",
        &format!(
            "INSERT INTO pgbench_branches (bid, bbalance) SELECT b, 0 FROM generate_series(1, {scale}) b; \
             INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT t, (t - 1) / 10 + 1, 0 \
             FROM generate_series(1, {tellers}) t; \
             INSERT INTO pgbench_accounts (aid, bid, abalance, filler) SELECT a, (a - 1) / 100000 + 1, \
             0, '' FROM generate_series(1, {accounts}) a; \
             ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid); \
             ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid); \
             ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)",
            tellers = scale * 10,
            accounts = scale * 100_000,
        ),
    )?;
    server.psql("bench", "VACUUM ANALYZE").map(|_| ())
}

fn size(server: &PgServer) -> Result<u64, KitError> {
    Ok(server
        .psql("bench", "SELECT pg_database_size('bench')")?
        .trim()
        .parse()
        .unwrap_or(0))
}
