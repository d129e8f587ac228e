//! Reaching a stored destination for the control plane's own work (retention's deletes,
//! a managed restore's header read): its credentials unwrapped (audited) and the
//! connection opened, one way for every caller.
//!
//! Credentials go from the sealed secret straight into their zeroizing wire type; the
//! JSON the storage parser takes is wiped as soon as the storage options are built.
//! Every connection passes the operator's reach policy ([`super::open`]).

use super::{open, DESTINATION_CREDENTIALS_PURPOSE};
use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::{Error, Result};
use crate::secrets::{self, Owner, SecretRef};
use dbcrate_core::secret::SecretJson;
use dbcrate_core::wire::DestinationCredentials;
use dbcrate_storage::admin::Destination;
use dbcrate_storage::reach::ReachPolicy;
use sqlx::any::AnyRow;
use sqlx::FromRow;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A destination as stored: what reaching it takes. Read from a row that selects the
/// destination's `kind`, `settings` and `credentials_secret_id` (with other columns, as
/// a join may).
#[derive(Debug, Clone)]
pub struct StoredDestination {
    /// `s3`, `sftp` or `directory`.
    pub kind: String,
    /// Its settings, as stored (JSON text).
    pub settings: String,
    /// The sealed secret holding its credentials, if it has any.
    pub credentials_secret_id: Option<String>,
}

crate::rows::from_row!(StoredDestination {
    kind,
    settings,
    credentials_secret_id
});

impl StoredDestination {
    /// The one row `sql` selects for `id`, read as the caller's `T` and the destination
    /// it joins.
    pub async fn fetch_with<T>(db: &Db, sql: &str, id: &str) -> Result<(T, Self)>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow>,
    {
        let row = sqlx::query(sql).bind(id).fetch_one(db.pool()).await?;
        Ok((T::from_row(&row)?, Self::from_row(&row)?))
    }

    /// The settings as JSON.
    pub fn settings_json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.settings)
            .map_err(|_| Error::internal("stored destination settings are not JSON"))
    }
}

/// What reaching a tenant's destination takes besides the database: the master keys
/// its credentials are sealed under, and where the operator lets the control plane
/// reach.
#[derive(Clone, Copy)]
pub struct Access<'a> {
    /// The master keys.
    pub keys: &'a MasterKeys,
    /// Where the control plane may reach.
    pub reach: &'a Arc<ReachPolicy>,
}

/// Who unwraps a destination's credentials and why: what the unwrap's audit row says.
#[derive(Debug, Clone, Copy)]
pub struct Unwrapping<'a> {
    /// The organisation owning the destination (and its secret).
    pub org_id: &'a str,
    /// Who acts (`system:retention`, `agent:…`, `user:…`).
    pub actor: &'a str,
    /// Why, for the audit row.
    pub reason: &'a str,
    /// When (RFC 3339).
    pub at: &'a str,
}

impl Unwrapping<'_> {
    /// The organisation's secret `id`, stored for `purpose`, unwrapped with the audit row
    /// this names: the one way a destination's credentials, a database password or a
    /// restore's file key is opened.
    pub async fn unwrap_secret(
        &self,
        db: &Db,
        keys: &MasterKeys,
        id: &str,
        purpose: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let owner = Owner::Org(self.org_id);
        let secret = SecretRef { owner, id, purpose };
        secrets::unwrap(db, keys, secret, self.actor, self.reason, self.at).await
    }
}

/// The destination's credentials (none when `secret_id` is), unwrapped (audited) into
/// their wire type.
pub async fn unwrap_credentials(
    db: &Db,
    keys: &MasterKeys,
    secret_id: Option<&str>,
    by: &Unwrapping<'_>,
) -> Result<Option<DestinationCredentials>> {
    let Some(secret_id) = secret_id else {
        return Ok(None);
    };
    let purpose = DESTINATION_CREDENTIALS_PURPOSE;
    let bytes = by.unwrap_secret(db, keys, secret_id, purpose).await?;
    let credentials = serde_json::from_slice(&bytes).map_err(|_| {
        Error::internal("stored destination credentials are not JSON of their shape")
    })?;
    Ok(Some(credentials))
}

/// Connects to a destination whose credentials are unwrapped already (the job hand-out
/// also sends them to the agent). `Err` is a stored destination that does not make
/// sense any more; `Ok(Err)` is storage that could not be reached, for the caller to
/// report in its own terms.
pub async fn connect_with(
    reach: &Arc<ReachPolicy>,
    kind: &str,
    settings: &serde_json::Value,
    credentials: Option<&DestinationCredentials>,
) -> Result<std::result::Result<Destination, dbcrate_storage::Error>> {
    let secret_json = credentials.map(DestinationCredentials::to_secret_json);
    let (location, options) = open(
        reach,
        kind,
        settings,
        secret_json.as_ref().map(SecretJson::expose_secret),
    )?;
    drop(secret_json);
    Ok(Destination::connect(&location, &options).await)
}

/// Unwraps a stored destination's credentials (audited, as `by` says) and connects to
/// it; the credentials are dropped (wiped) once the connection is made. Errors as
/// [`connect_with`].
pub async fn connect(
    db: &Db,
    with: Access<'_>,
    destination: &StoredDestination,
    by: &Unwrapping<'_>,
) -> Result<std::result::Result<Destination, dbcrate_storage::Error>> {
    let secret_id = destination.credentials_secret_id.as_deref();
    let credentials = unwrap_credentials(db, with.keys, secret_id, by).await?;
    let settings = destination.settings_json()?;
    connect_with(
        with.reach,
        &destination.kind,
        &settings,
        credentials.as_ref(),
    )
    .await
}
