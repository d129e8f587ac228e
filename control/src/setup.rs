//! `dbcrate-control init`: the first organisation and its owner, once.

use crate::accounts::passwords;
use crate::accounts::roles::Role;
use crate::accounts::users;
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{Error, Result};
use crate::orgs::{self, Org};
use dbcrate_core::secret::SecretString;

/// What `init` created; the one-time password is shown once and never stored in clear.
#[derive(Debug)]
pub struct Initialised {
    /// The new organisation.
    pub org: Org,
    /// The owner's user id.
    pub owner_id: String,
    /// The owner's one-time password (must be changed at first sign-in).
    pub one_time_password: SecretString,
}

/// Creates the first organisation and its owner in one transaction. Refused when the
/// instance already has an organisation.
pub async fn init(
    db: &Db,
    keys: &MasterKeys,
    org_name: &str,
    owner_email: &str,
    now: &str,
) -> Result<Initialised> {
    let existing: i64 = sqlx::query_scalar("SELECT count(*) FROM orgs")
        .fetch_one(db.pool())
        .await?;
    if existing > 0 {
        return Err(Error::conflict(
            "init runs once: this instance has organisations already",
        ));
    }
    let password = passwords::one_time_password()?;
    let mut conn = db.begin().await?;
    let created: Result<(Org, String)> = async {
        let org = orgs::create_in(&mut conn, keys, org_name, "system:init", now).await?;
        let owner = users::create_in(&mut conn, owner_email, &password, true, now).await?;
        users::add_member_in(&mut conn, &org.id, &owner, Role::Owner, "system:init", now).await?;
        Ok((org, owner))
    }
    .await;
    let (org, owner_id) = end_write(conn, created).await?;
    Ok(Initialised {
        org,
        owner_id,
        one_time_password: password,
    })
}
