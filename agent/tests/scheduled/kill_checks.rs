//! What must hold after any kill, checked against the storage itself and the control
//! plane's database: every object under a final name is complete and recorded (its
//! size and SHA-256 are the recorded ones), every recorded backup's objects are there,
//! every backup recorded deleted is gone, no job is queued or running, and the
//! organisation's audit chain verifies. Plus the seeded random moments the harnesses
//! kill at, and the tally they report.

use crate::common;
use dbcrate_control::db::Db;
use dbcrate_testkit::S3Server;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where the scene's backups are, to list and read them as a customer would.
pub enum Stored<'a> {
    /// A directory on this host: the directory destination, or the SFTP server's.
    Files(PathBuf),
    /// A Garage bucket, under the destination's prefix.
    Bucket(&'a S3Server, &'a str),
}

impl Stored<'_> {
    /// Every object under a final name (relative to the destination), with its bytes'
    /// SHA-256 computed once per name and size (`seen` remembers).
    fn objects(&self, seen: &mut HashMap<(String, u64), String>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match self {
            Stored::Files(dir) => {
                for key in crate::scene::final_objects(dir) {
                    let path = dir.join(&key);
                    let size = std::fs::metadata(&path).unwrap().len();
                    let sha = seen
                        .entry((key.clone(), size))
                        .or_insert_with(|| sha256_of(&path))
                        .clone();
                    out.insert(key, sha);
                }
            }
            Stored::Bucket(s3, prefix) => {
                let scratch = common::scratch("kill-check");
                for full in common::curl_list(s3) {
                    let Some(key) = full.strip_prefix(&format!("{prefix}/")) else {
                        continue;
                    };
                    if key == "README-dbcrate.txt" {
                        continue;
                    }
                    let to = scratch.path().join("object");
                    common::curl_get(s3, &full, &to);
                    let size = std::fs::metadata(&to).unwrap().len();
                    let sha = seen
                        .entry((key.to_string(), size))
                        .or_insert_with(|| sha256_of(&to))
                        .clone();
                    out.insert(key.to_string(), sha);
                }
            }
        }
        out
    }
}

fn sha256_of(path: &Path) -> String {
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).unwrap();
    std::io::copy(&mut file, &mut hasher).unwrap();
    format!("{:x}", hasher.finalize())
}

/// One recorded backup: its key and SHA-256, its globals' SHA-256, when it was deleted.
type Recorded = (String, String, Option<String>, Option<i64>);

/// Checks every invariant; returns what is wrong, one line each (empty: all hold).
pub async fn violations(
    db: &Db,
    org_id: &str,
    stored: &Stored<'_>,
    seen: &mut HashMap<(String, u64), String>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    let objects = stored.objects(seen);
    let recorded: Vec<Recorded> = sqlx::query_as(
        "SELECT object_key, sha256, globals_sha256, deleted_at FROM backups WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await
    .unwrap();
    // What storage must hold (live backups) and must not (deleted ones).
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for (object_key, sha256, globals_sha256, deleted_at) in recorded {
        let globals = dbcrate_core::object_key::globals_key(&object_key).unwrap();
        let parts = [(object_key, Some(sha256)), (globals, globals_sha256)];
        for (key, sha) in parts {
            match (deleted_at, sha) {
                (None, Some(sha)) => {
                    match objects.get(&key) {
                        None => wrong.push(format!("recorded {key} is not in storage")),
                        Some(found) if *found != sha => {
                            wrong.push(format!("{key} is not the recorded bytes"))
                        }
                        Some(_) => {}
                    }
                    expected.insert(key, sha);
                }
                (Some(_), _) if objects.contains_key(&key) => {
                    wrong.push(format!("{key} is recorded deleted but still stored"))
                }
                _ => {}
            }
        }
    }
    for key in objects.keys() {
        if !expected.contains_key(key) {
            wrong.push(format!(
                "{key} is stored under a final name but not recorded"
            ));
        }
    }
    let unfinished: Vec<(String, String)> =
        sqlx::query_as("SELECT id, state FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_all(db.pool())
            .await
            .unwrap();
    for (job, state) in unfinished {
        wrong.push(format!("job {job} is still {state}"));
    }
    match dbcrate_control::audit::verify(db, org_id).await.unwrap() {
        Ok(_) => {}
        Err(e) => wrong.push(format!("the audit chain breaks at {}: {}", e.seq, e.reason)),
    }
    wrong
}

/// How long a running job may go without a heartbeat (agents here send one a second)
/// before a harness takes it for a claim no agent received: longer than an agent that
/// finished the job waits between retries of its report (at most 30 s) while the
/// control plane was away, with room for a loaded machine.
pub const NO_HEARTBEAT_FOR: i64 = 90;

/// What seven minutes would do, now: the lease and grace of every running job lapse,
/// and the control plane's sweep deletes what those attempts stored and never reported
/// (added to `tally`). Returns how many jobs were taken back.
pub async fn lapse_leases_now(
    db: &Db,
    keys: &dbcrate_control::envelope::MasterKeys,
    reach: &std::sync::Arc<dbcrate_storage::reach::ReachPolicy>,
    tally: &mut Tally,
) -> usize {
    use dbcrate_control::backups::jobs;
    let lapsed = dbcrate_core::time::unix_now() + jobs::LEASE_SECS + jobs::LEASE_GRACE_SECS + 1;
    let expired = jobs::expire_leases(db, lapsed).await.unwrap();
    let swept = jobs::abandoned::sweep(db, keys, reach, lapsed)
        .await
        .unwrap();
    assert_eq!(swept.failed, 0, "{swept:?}");
    tally.abandoned_deleted += swept.deleted;
    expired
}

/// A small seeded generator (SplitMix64): a run is repeated with the seed it printed.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `DBCRATE_KILL_SEED`, else from the clock; the seed is printed.
    pub fn from_env(what: &str) -> Self {
        let seed = std::env::var("DBCRATE_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{what}: DBCRATE_KILL_SEED={seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration uniformly in `[0, up_to)`.
    pub fn below(&mut self, up_to: std::time::Duration) -> std::time::Duration {
        let nanos = up_to.as_nanos().max(1) as u64;
        std::time::Duration::from_nanos(self.next() % nanos)
    }
}

/// How many kills landed in each state, and what was found after them.
#[derive(Default)]
pub struct Tally {
    /// Kills by where they landed (`backup: running/dumping`, …).
    pub landed: BTreeMap<String, usize>,
    /// Objects an abandoned attempt left that the control plane deleted.
    pub abandoned_deleted: usize,
    /// Backups deleted by retention along the way.
    pub retention_deleted: usize,
    /// Jobs that ended succeeded or failed.
    pub ended: BTreeMap<String, usize>,
    /// Kills in all.
    pub kills: usize,
    /// Jobs claimed for a poll whose agent was dead, taken back when their lease lapsed.
    pub unanswered_claims: usize,
    /// Where the last kill fell.
    pub last: String,
}

impl Tally {
    pub fn landed(&mut self, at: String) {
        self.kills += 1;
        *self.landed.entry(at.clone()).or_default() += 1;
        self.last = at;
    }

    pub fn ended(&mut self, what: String, jobs: usize) {
        *self.ended.entry(what).or_default() += jobs;
    }

    /// The report printed at the end of a run.
    pub fn report(&self, title: &str) -> String {
        let mut out = format!(
            "{title}: {} kills, every invariant held after each\n",
            self.kills
        );
        out.push_str("  killed while:\n");
        for (at, n) in &self.landed {
            out.push_str(&format!("    {n:>4}  {at}\n"));
        }
        out.push_str("  jobs ended:\n");
        for (what, n) in &self.ended {
            out.push_str(&format!("    {n:>4}  {what}\n"));
        }
        out.push_str(&format!(
            "  objects of abandoned attempts deleted: {}; backups deleted by retention: {}; \
             claims answered into a dead connection (taken back at lease expiry): {}\n",
            self.abandoned_deleted, self.retention_deleted, self.unanswered_claims
        ));
        out
    }
}

/// How many kills a harness makes: `DBCRATE_KILL_POINTS_<WHICH>` if set, else the
/// short sample CI runs.
pub fn kills_wanted(which: &str, sample: usize) -> usize {
    std::env::var(format!("DBCRATE_KILL_POINTS_{which}"))
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(sample)
}
