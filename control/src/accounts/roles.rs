//! Roles in an organisation and who may grant what: the one place that decides
//! whether an actor may give or take a role, shared by membership changes and
//! invitations.

use crate::error::{Code, Error, Result};
use sqlx::AnyConnection;

/// The roles a member can have in an organisation, most powerful first.
pub const ROLES: [&str; 4] = ["owner", "admin", "operator", "viewer"];

/// How much a role may do: owners 3 … viewers 0; `None` for an unknown role.
pub fn role_rank(role: &str) -> Option<usize> {
    ROLES
        .iter()
        .position(|r| *r == role)
        .map(|i| ROLES.len() - 1 - i)
}

/// Who is acting, and with which role in the organisation.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `user:…` or `token:…`, as recorded in the audit log.
    pub name: &'a str,
    /// The actor's user id, when a person acts.
    pub user_id: Option<&'a str>,
    /// The actor's role in the organisation.
    pub role: &'a str,
}

pub(crate) fn rank(role: &str) -> Result<usize> {
    role_rank(role).ok_or_else(|| {
        Error::invalid(format!(
            "unknown role {role:?}; roles are {}",
            ROLES.join(", ")
        ))
    })
}

fn forbidden(message: &str) -> Error {
    Error::new(Code::Forbidden, message)
}

/// Refuses unless the actor may manage someone holding `target_role` and may grant
/// `new_role` (when given).
pub(crate) fn check_authority(
    actor: &Actor<'_>,
    target_role: &str,
    new_role: Option<&str>,
) -> Result<()> {
    let mine = rank(actor.role)?;
    if mine < rank("admin")? {
        return Err(forbidden("only owners and admins manage members"));
    }
    if rank(target_role)? > mine {
        return Err(forbidden("only an owner can change an owner's membership"));
    }
    if let Some(new_role) = new_role {
        if rank(new_role)? > mine {
            return Err(forbidden("nobody can grant a role above their own"));
        }
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
