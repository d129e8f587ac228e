//! Roles in an organisation and who may grant what: the one place that decides
//! whether an actor may give or take a role, shared by membership changes and
//! invitations.

use crate::error::{Code, Error, Result};
use serde::Serialize;
use sqlx::AnyConnection;
use std::fmt;
use std::str::FromStr;

/// A member's (or an API token's) role in an organisation. Ordered by power, so
/// `Role::Owner > Role::Admin`: the order of the variants is the order of power.
/// Stored and shown as [`Role::as_str`]; the tests fix that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in the organisation.
    Viewer,
    /// Also runs backups and restores.
    Operator,
    /// Also manages databases, destinations, schedules, agents and members.
    Admin,
    /// Also manages owners and the organisation's key.
    Owner,
}

impl Role {
    /// Every role, most powerful first (the order messages list them in).
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::Viewer];

    /// The role as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    /// A role by its text; anything else is invalid input naming the roles.
    fn from_str(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
                Error::invalid(format!(
                    "unknown role {text:?}; roles are {}",
                    names.join(", ")
                ))
            })
    }
}

crate::rows::text_column!(Role);

/// Who is acting, and with which role in the organisation.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `user:…` or `token:…`, as recorded in the audit log.
    pub name: &'a str,
    /// The actor's user id, when a person acts.
    pub user_id: Option<&'a str>,
    /// The actor's role in the organisation.
    pub role: Role,
}

fn forbidden(message: &str) -> Error {
    Error::new(Code::Forbidden, message)
}

/// Refuses unless the actor may manage someone holding `target_role` and may grant
/// `new_role` (when given).
pub(crate) fn check_authority(
    actor: &Actor<'_>,
    target_role: Role,
    new_role: Option<Role>,
) -> Result<()> {
    if actor.role < Role::Admin {
        return Err(forbidden("only owners and admins manage members"));
    }
    if target_role > actor.role {
        return Err(forbidden("only an owner can change an owner's membership"));
    }
    if new_role.is_some_and(|new_role| new_role > actor.role) {
        return Err(forbidden("nobody can grant a role above their own"));
    }
    Ok(())
}

/// Locks the organisation's row for the rest of the transaction.
pub(crate) async fn lock_org(conn: &mut AnyConnection, org_id: &str) -> Result<()> {
    let locked = sqlx::query("UPDATE orgs SET name = name WHERE id = $1")
        .bind(org_id)
        .execute(&mut *conn)
        .await?;
    if locked.rows_affected() != 1 {
        return Err(Error::not_found("no such organisation"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Role;

    /// The stored text of every role: memberships, invitations and API tokens hold it,
    /// and the API shows it. A rename here would change stored data.
    const TEXT: [(Role, &str); 4] = [
        (Role::Owner, "owner"),
        (Role::Admin, "admin"),
        (Role::Operator, "operator"),
        (Role::Viewer, "viewer"),
    ];

    #[test]
    fn each_role_has_its_stored_text() {
        assert_eq!(Role::ALL.len(), TEXT.len());
        for (role, text) in TEXT {
            assert_eq!(role.as_str(), text);
            assert_eq!(text.parse::<Role>().unwrap(), role);
            assert_eq!(serde_json::to_value(role).unwrap(), text);
        }
    }

    #[test]
    fn the_schema_allows_exactly_these_roles() {
        let allowed = "CHECK (role IN ('owner', 'admin', 'operator', 'viewer'))";
        for schema in [
            include_str!("../../migrations/common/0003_users.sql"),
            include_str!("../../migrations/sqlite/0005_accounts.sql"),
            include_str!("../../migrations/postgres/0005_accounts.sql"),
            include_str!("../../migrations/common/0017_invitations.sql"),
        ] {
            assert!(schema.contains(allowed), "{schema}");
        }
        let listed: Vec<String> = Role::ALL.iter().map(|r| format!("'{r}'")).collect();
        assert_eq!(format!("CHECK (role IN ({}))", listed.join(", ")), allowed);
    }

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Owner > Role::Admin);
        assert!(Role::Admin > Role::Operator);
        assert!(Role::Operator > Role::Viewer);
        assert_eq!(Role::ALL.iter().max(), Some(&Role::Owner));
    }

    #[test]
    fn an_unknown_role_is_refused_with_the_list() {
        let e = "root".parse::<Role>().unwrap_err();
        assert_eq!(
            e.message,
            "unknown role \"root\"; roles are owner, admin, operator, viewer"
        );
        assert!("Owner".parse::<Role>().is_err());
    }
}
