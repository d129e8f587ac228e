//! The daily re-probe: every destination is probed again (list / write / read / delete,
//! with its stored credentials, unwrapped for it and audited) once a day, so credentials
//! that expired, a bucket that was deleted or a disk that filled up are found before a
//! backup needs them. The last outcome is kept in `destination_probes`; the alerts read
//! it (`destination_probe_failed`).

use super::{open, report_json, unwrap_credentials, Unwrapping};
use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::Result;
use dbcrate_core::secret::SecretJson;
use dbcrate_core::time::rfc3339;
use dbcrate_core::wire::DestinationCredentials;
use dbcrate_storage::reach::ReachPolicy;
use std::sync::Arc;

/// How long a probe's outcome stands.
pub const REPROBE_EVERY_SECS: i64 = 86_400;
/// Who unwraps the credentials, in the audit log.
const ACTOR: &str = "system:probe";

/// Probes every destination whose last probe is older than [`REPROBE_EVERY_SECS`] (or
/// that was never re-probed); answers how many were probed.
pub async fn reprobe_due(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    now: i64,
) -> Result<usize> {
    let due: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT d.id, d.org_id, d.kind, d.settings, d.credentials_secret_id FROM destinations d \
         LEFT JOIN destination_probes p ON p.destination_id = d.id \
         WHERE COALESCE(p.probed_at, d.created_at) <= $1 ORDER BY d.id",
    )
    .bind(now - REPROBE_EVERY_SECS)
    .fetch_all(db.pool())
    .await?;
    for (id, org_id, kind, settings, secret_id) in &due {
        let failure = probe(
            db,
            keys,
            reach,
            (org_id, kind, settings),
            secret_id.as_deref(),
            now,
        )
        .await;
        sqlx::query(
            "INSERT INTO destination_probes (destination_id, org_id, probed_at, passed, failure) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (destination_id) DO UPDATE SET \
             probed_at = $3, passed = $4, failure = $5",
        )
        .bind(id)
        .bind(org_id)
        .bind(now)
        .bind(i64::from(failure.is_none()))
        .bind(&failure)
        .execute(db.pool())
        .await?;
    }
    Ok(due.len())
}

/// One probe: `None` when every step passed, else which step failed and why (in the
/// tenant-safe words the dashboard's "Test" uses).
async fn probe(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    (org_id, kind, settings): (&str, &str, &str),
    secret_id: Option<&str>,
    now: i64,
) -> Option<String> {
    let at = rfc3339(now);
    let by = Unwrapping {
        org_id,
        actor: ACTOR,
        reason: "daily destination probe",
        at: &at,
    };
    let outcome: Result<Option<String>> = async {
        let credentials = unwrap_credentials(db, keys, secret_id, &by).await?;
        let settings: serde_json::Value = serde_json::from_str(settings).map_err(|_| {
            crate::error::Error::internal("stored destination settings are not JSON")
        })?;
        let secret = credentials
            .as_ref()
            .map(DestinationCredentials::to_secret_json);
        let (location, options) = open(
            reach,
            kind,
            &settings,
            secret.as_ref().map(SecretJson::expose_secret),
        )?;
        drop(secret);
        let report = dbcrate_storage::admin::probe(&location, &options).await;
        if report.succeeded() {
            return Ok(None);
        }
        let steps = report_json(&report);
        let failed = steps
            .as_array()
            .and_then(|s| s.iter().find(|s| s["outcome"] == "failed"))
            .map(|s| {
                format!(
                    "{}: {}",
                    s["step"].as_str().unwrap_or("?"),
                    s["error"].as_str().unwrap_or("failed")
                )
            });
        Ok(Some(failed.unwrap_or_else(|| "the probe failed".into())))
    }
    .await;
    match outcome {
        Ok(failure) => failure,
        Err(e) => Some(e.message),
    }
}
