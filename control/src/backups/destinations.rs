//! Destinations: where an organisation's backups go — an S3-compatible bucket (and
//! prefix), an SFTP host (pinned host key, private key), or a directory both the agent
//! and the control plane reach.
//!
//! Nothing is saved before a list / write / read / delete probe with the given settings
//! and credentials passes; the answer says how each step went. On save the control
//! plane writes a plain-text `README-dbcrate.txt` at the prefix telling whoever finds
//! the files how to decrypt and restore them with stock tools. Settings are stored as
//! JSON; credentials are one sealed secret and never shown again.

mod connect;
mod reprobe;

pub use connect::{
    connect, connect_with, unwrap_credentials, Access, StoredDestination, Unwrapping,
};
pub use reprobe::{reprobe_due, REPROBE_EVERY_SECS};

use super::objects::Objects;
use crate::audit::{self, AuditAction, AuditEvent};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{new_id, Error, Result};
use crate::secrets::{self, Owner};
use dbcrate_storage::admin::{self, ProbeReport, ProbeStep, StepOutcome, StepReport};
use dbcrate_storage::reach::ReachPolicy;
use dbcrate_storage::{FailureClass, Location, StorageOptions};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::sync::Arc;

/// The purpose recorded with a destination's sealed credentials.
pub const DESTINATION_CREDENTIALS_PURPOSE: &str = "destination-credentials";

/// The name of the README written at every destination's prefix.
pub const README_NAME: &str = "README-dbcrate.txt";

/// The README's text: enough to restore without dbcrate.
pub fn readme(org_recipient: &str) -> String {
    format!(
        "These files are PostgreSQL backups made by dbcrate.\n\
         \n\
         Each backup is one file:\n\
         \x20 <database>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMSSZ>-<job>.pgdump.zst.age\n\
         It is `pg_dump --format=custom` output, compressed with zstd, encrypted with age\n\
         (https://age-encryption.org) to this recipient:\n\
         \x20 {org_recipient}\n\
         \n\
         Next to it, with the same name ending in .globals.sql.zst.age, are the\n\
         cluster's roles and other globals at that time (pg_dumpall --globals-only\n\
         --no-role-passwords: plain SQL for psql, encrypted the same way; absent when\n\
         the agent's role could not read them).\n\
         \n\
         To restore one without dbcrate you need the organisation's recovery key (an\n\
         AGE-SECRET-KEY-1... identity file, exported by the organisation owner) and the\n\
         stock tools age, zstd, psql and pg_restore. Into a server that lacks the\n\
         roles, apply the globals first (psql reports roles that exist already, and\n\
         goes on; it sets the attributes of existing roles to the saved ones, so skip\n\
         this step on a server whose roles you want to keep as they are):\n\
         \n\
         \x20 age -d -i recovery.key BACKUP.globals.sql.zst.age | zstd -d | psql -d postgres\n\
         \x20 createdb restored\n\
         \x20 age -d -i recovery.key BACKUP.pgdump.zst.age | zstd -d | pg_restore -d restored\n\
         \n\
         Roles are saved without passwords: set them again (ALTER ROLE ... PASSWORD).\n\
         \n\
         Files whose names start with a dot are unfinished uploads, never backups.\n"
    )
}

/// A destination as listed (settings, never credentials).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationInfo {
    /// Its id (`dst_…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// `s3`, `sftp` or `directory`.
    pub kind: String,
    /// Its non-secret settings.
    pub settings: Value,
    /// Whether credentials are stored.
    pub has_credentials: bool,
    /// When it was added.
    pub created_at: i64,
}

/// Where a destination is and how to reach it, from its settings and credentials (see
/// `dbcrate_storage::spec`), limited by the operator's reach policy (every connection the
/// control plane makes for a tenant goes through here); a bad shape is the caller's input
/// error.
pub fn open(
    reach: &Arc<ReachPolicy>,
    kind: &str,
    settings: &Value,
    credentials: Option<&Value>,
) -> Result<(Location, StorageOptions)> {
    let (location, mut options) = dbcrate_storage::spec::from_settings(kind, settings, credentials)
        .map_err(|e| Error::invalid(e.to_string()))?;
    options.reach = Some(reach.clone());
    Ok((location, options))
}

/// What a tenant is told about a storage failure at `step`: a fixed message for its
/// class, never the remote server's words (its body or headers could be anything an
/// internal service answers). The detail goes to the operator's log.
pub fn tenant_failure(step: &str, class: FailureClass, detail: &str) -> String {
    tracing::warn!(probe.step = step, "destination {step} failed: {detail}");
    match class {
        FailureClass::PermissionDenied => format!("permission denied for step {step}"),
        // The policy's own refusal names the rule and the setting, nothing remote.
        FailureClass::NotAllowed => format!("{} ({detail})", class.tenant_message()),
        other => format!("{} at step {step}", other.tenant_message()),
    }
}

/// What to save.
#[derive(Debug)]
pub struct NewDestination<'a> {
    /// Its name.
    pub name: &'a str,
    /// `s3`, `sftp` or `directory`.
    pub kind: &'a str,
    /// Non-secret settings.
    pub settings: &'a Value,
    /// Secret settings (keys), sealed on save.
    pub credentials: Option<&'a Value>,
}

/// Runs the list / write / read / delete probe against a destination described by
/// `kind`, `settings` and `credentials`, within the reach policy, without saving
/// anything: the dashboard's "Test". A bad shape is the caller's input error.
pub async fn test(
    reach: &Arc<ReachPolicy>,
    kind: &str,
    settings: &Value,
    credentials: Option<&Value>,
) -> Result<ProbeReport> {
    let (location, options) = open(reach, kind, settings, credentials)?;
    Ok(admin::probe(&location, &options).await)
}

/// Probes the destination; saves it (with its README) only if every step passed.
/// `Ok(Err(report))` is a failed probe: nothing was saved.
pub async fn create(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    org_id: &str,
    new: &NewDestination<'_>,
    actor: &str,
    now: i64,
) -> Result<std::result::Result<(DestinationInfo, ProbeReport), ProbeReport>> {
    let name = &crate::names::display_name("name", new.name, 100)?;
    let (location, options) = open(reach, new.kind, new.settings, new.credentials)?;
    let report = admin::probe(&location, &options).await;
    if !report.succeeded() {
        return Ok(Err(report));
    }
    let recipient: String = sqlx::query_scalar("SELECT recipient FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_one(db.pool())
        .await?;
    let readme_failed = |e: dbcrate_storage::Error| {
        Error::invalid(format!(
            "writing {README_NAME} at the destination: {}",
            tenant_failure("readme", e.class(), e.message())
        ))
    };
    let store = admin::Destination::connect(&location, &options)
        .await
        .map_err(readme_failed)?;
    let written = store
        .put_small(README_NAME, readme(&recipient).as_bytes(), true)
        .await;
    store.close().await;
    written.map_err(readme_failed)?;
    let id = new_id("dst")?;
    let stamp = dbcrate_core::time::rfc3339(now);
    let mut tx = db.begin().await?;
    let saved: Result<()> = async {
        let secret_id = match new.credentials.filter(|c| !c.is_null()) {
            Some(creds) => Some(
                secrets::insert(
                    &mut tx,
                    keys,
                    Owner::Org(org_id),
                    DESTINATION_CREDENTIALS_PURPOSE,
                    zeroize::Zeroizing::new(creds.to_string()).as_bytes(),
                    &stamp,
                )
                .await?,
            ),
            None => None,
        };
        sqlx::query(
            "INSERT INTO destinations (id, org_id, name, kind, settings, credentials_secret_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(name)
        .bind(new.kind)
        .bind(new.settings.to_string())
        .bind(&secret_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::conflict(format!("a destination named {name:?} exists already"))
            }
            _ => Error::from(e),
        })?;
        let details = json!({ "name": name, "kind": new.kind, "settings": new.settings, "probe": "passed" });
        audit::append_in(
            &mut tx,
            &AuditEvent {
                org_id,
                actor,
                action: AuditAction::DestinationCreate,
                target: &format!("destination:{id}"),
                details: &details.to_string(),
            },
            &stamp,
        )
        .await?;
        Ok(())
    }
    .await;
    end_write(tx, saved).await?;
    let info = get(db, org_id, &id)
        .await?
        .ok_or_else(|| Error::internal("the new destination vanished"))?;
    Ok(Ok((info, report)))
}

/// A row selected with [`COLUMNS`]: settings parsed from their JSON text, the
/// credentials' secret id only telling whether there are any.
impl sqlx::FromRow<'_, AnyRow> for DestinationInfo {
    fn from_row(r: &AnyRow) -> std::result::Result<Self, sqlx::Error> {
        let settings: String = r.try_get("settings")?;
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            kind: r.try_get("kind")?,
            settings: serde_json::from_str(&settings).unwrap_or(Value::Null),
            has_credentials: r
                .try_get::<Option<String>, _>("credentials_secret_id")?
                .is_some(),
            created_at: r.try_get("created_at")?,
        })
    }
}

const COLUMNS: &str = "id, name, kind, settings, credentials_secret_id, created_at";

/// The organisation's destinations, selected with [`COLUMNS`].
const DESTINATIONS: Objects = Objects {
    table: "destinations",
    columns: COLUMNS,
    id_prefix: "dst",
};

/// The organisation's destinations, by name.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<DestinationInfo>> {
    DESTINATIONS.list(db, org_id).await
}

/// One destination of the organisation (none for another organisation's).
pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<DestinationInfo>> {
    DESTINATIONS.get(db, org_id, id).await
}

/// What a tenant is told about a failed probe step: [`tenant_failure`], and after a
/// failed delete the probe object that may remain (our own words, so safe to show).
fn step_failure(report: &ProbeReport, step: &StepReport) -> Option<String> {
    let StepOutcome::Failed { class, detail } = &step.outcome else {
        return None;
    };
    let told = tenant_failure(step.step.name(), *class, detail);
    Some(if step.step == ProbeStep::Delete {
        format!(
            "{told}; the probe object {} may remain: grant delete permission (retention \
             needs it) and remove it by hand",
            report.probe_key
        )
    } else {
        told
    })
}

/// The first failed step's message for a tenant, if a step failed.
pub fn first_failure_message(report: &ProbeReport) -> Option<String> {
    report.steps.iter().find_map(|s| step_failure(report, s))
}

/// Probe steps as JSON, for answers and audit rows.
pub fn report_json(report: &ProbeReport) -> Value {
    Value::Array(
        report
            .steps
            .iter()
            .map(|s| match &s.outcome {
                StepOutcome::Ok => json!({ "step": s.step.name(), "outcome": "ok" }),
                StepOutcome::Failed { .. } => json!({
                    "step": s.step.name(),
                    "outcome": "failed",
                    "error": step_failure(report, s),
                }),
                StepOutcome::NotRun => json!({ "step": s.step.name(), "outcome": "not run" }),
            })
            .collect(),
    )
}
