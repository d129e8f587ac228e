//! The organisations one person belongs to, with their role in each: what a signed-in
//! person sees first. (Who belongs to one organisation is `members`.)

use crate::db::Db;
use crate::error::Result;
use sqlx::Row;

/// One organisation a person belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// `org_…`.
    pub org_id: String,
    /// The organisation's name.
    pub org_name: String,
    /// The person's role there, as stored (`owner`, `admin`, `operator`, `viewer`).
    pub role: String,
    /// `managed` or `customer_sealed`: who can open the organisation's key.
    pub key_mode: String,
}

/// The organisations `user_id` belongs to, by name.
pub async fn of_user(db: &Db, user_id: &str) -> Result<Vec<Membership>> {
    let rows = sqlx::query(
        "SELECT o.id, o.name, m.role, o.key_mode FROM memberships m \
         JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name, o.id",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Membership {
                org_id: row.try_get(0)?,
                org_name: row.try_get(1)?,
                role: row.try_get(2)?,
                key_mode: row.try_get(3)?,
            })
        })
        .collect()
}
