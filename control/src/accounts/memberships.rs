//! The organisations one person belongs to, with their role in each: what a signed-in
//! person sees first. (Who belongs to one organisation is `members`.)

use super::roles::Role;
use crate::db::Db;
use crate::error::Result;

/// One organisation a person belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// `org_…`.
    pub org_id: String,
    /// The organisation's name.
    pub org_name: String,
    /// The person's role there.
    pub role: Role,
    /// `managed` or `customer_sealed`: who can open the organisation's key (as stored:
    /// `orgs::KeyMode` is a layer above people).
    pub key_mode: String,
}

crate::rows::from_row!(Membership {
    org_id,
    org_name,
    role,
    key_mode
});

/// The organisations `user_id` belongs to, by name.
pub async fn of_user(db: &Db, user_id: &str) -> Result<Vec<Membership>> {
    let memberships = sqlx::query_as(
        "SELECT o.id AS org_id, o.name AS org_name, m.role, o.key_mode FROM memberships m \
         JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name, o.id",
    )
    .bind(user_id)
    .fetch_all(db.pool())
    .await?;
    Ok(memberships)
}
