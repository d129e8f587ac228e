//! Who belongs to an organisation and with which role; changes to that, each audited in
//! the organisation's chain inside the transaction that makes it. People join by
//! accepting an invitation (`invitations`), never by being added.
//!
//! Rules a careful owner expects: nobody grants more than they hold; admins cannot touch
//! owners; an organisation always keeps at least one owner; a member's API tokens and
//! pending invitations do not outlive the role that made them; a password reset by an
//! admin only reaches people who belong to this organisation alone (otherwise an admin
//! here could take over someone's seat elsewhere). Each change first locks the
//! organisation's row, so two concurrent changes cannot both remove "the other" owner.

use crate::accounts::passwords;
use crate::accounts::roles::check_authority;
use crate::accounts::roles::lock_org;
use crate::accounts::roles::{Actor, Role};
use crate::accounts::{invitations, sessions};
use crate::audit::{self, AuditAction, AuditEvent};
use crate::db::{end_write, Db};
use crate::error::{Error, Result};
use dbcrate_core::secret::SecretString;
use sqlx::AnyConnection;

/// A member of an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Their user id.
    pub user_id: String,
    /// Their e-mail address.
    pub email: String,
    /// Their role here.
    pub role: Role,
}

crate::rows::from_row!(Member {
    user_id,
    email,
    role
});

/// The role `user_id` holds in `org_id`, if a member.
pub async fn role_of(db: &Db, org_id: &str, user_id: &str) -> Result<Option<Role>> {
    Ok(
        sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The organisation's members, by e-mail.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<Member>> {
    Ok(sqlx::query_as(
        "SELECT m.user_id, u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 ORDER BY u.email",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?)
}

async fn current_role(conn: &mut AnyConnection, org_id: &str, user_id: &str) -> Result<Role> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::not_found("no such member"))
}

async fn owner_count(conn: &mut AnyConnection, org_id: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM memberships WHERE org_id = $1 AND role = $2")
            .bind(org_id)
            .bind(Role::Owner)
            .fetch_one(&mut *conn)
            .await?,
    )
}

async fn record_in(
    conn: &mut AnyConnection,
    org_id: &str,
    actor: &Actor<'_>,
    action: AuditAction,
    user_id: &str,
    details: serde_json::Value,
    now: &str,
) -> Result<()> {
    audit::append_in(
        conn,
        &AuditEvent {
            org_id,
            actor: actor.name,
            action,
            target: &format!("user:{user_id}"),
            details: &details.to_string(),
        },
        now,
    )
    .await?;
    Ok(())
}

/// A live API token a member created.
struct CreatedToken {
    id: String,
    role: Role,
}

crate::rows::from_row!(CreatedToken { id, role });

/// Revokes the API tokens `user_id` created in `org_id` whose role is above `keep_up_to`
/// (all of them when `None`): a token must not outlive its creator's membership or keep
/// a role its creator lost. Each revocation is audited.
async fn revoke_tokens_in(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    keep_up_to: Option<Role>,
    actor: &Actor<'_>,
    now: &str,
) -> Result<()> {
    let tokens: Vec<CreatedToken> = sqlx::query_as(
        "SELECT id, role FROM api_tokens WHERE org_id = $1 AND created_by = $2 AND revoked_at IS NULL",
    )
    .bind(org_id)
    .bind(format!("user:{user_id}"))
    .fetch_all(&mut *conn)
    .await?;
    let unix = dbcrate_core::time::parse_rfc3339(now).unwrap_or_else(dbcrate_core::time::unix_now);
    for CreatedToken { id, role } in tokens {
        if keep_up_to.is_some_and(|max| role <= max) {
            continue;
        }
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(unix)
            .bind(&id)
            .execute(&mut *conn)
            .await?;
        audit::append_in(
            conn,
            &AuditEvent {
                org_id,
                actor: actor.name,
                action: AuditAction::ApiTokenRevoke,
                target: &format!("api_token:{id}"),
                details: &serde_json::json!({
                    "reason": "its creator's membership changed", "creator": user_id,
                })
                .to_string(),
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// Changes a member's role. The last owner cannot be demoted.
pub async fn change_role(
    db: &Db,
    org_id: &str,
    user_id: &str,
    role: &str,
    actor: &Actor<'_>,
    now: &str,
) -> Result<()> {
    let role: Role = role.parse()?;
    let mut conn = db.begin().await?;
    let changed: Result<()> = async {
        lock_org(&mut conn, org_id).await?;
        let from = current_role(&mut conn, org_id, user_id).await?;
        check_authority(actor, from, Some(role))?;
        if from == Role::Owner && role != Role::Owner && owner_count(&mut conn, org_id).await? <= 1
        {
            return Err(Error::conflict(
                "an organisation needs an owner: make someone else owner first",
            ));
        }
        sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
            .bind(role)
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        let details = serde_json::json!({ "from": from, "to": role });
        record_in(
            &mut conn,
            org_id,
            actor,
            AuditAction::MemberRoleChange,
            user_id,
            details,
            now,
        )
        .await?;
        revoke_tokens_in(&mut conn, org_id, user_id, Some(role), actor, now).await?;
        let unix =
            dbcrate_core::time::parse_rfc3339(now).unwrap_or_else(dbcrate_core::time::unix_now);
        invitations::withdraw_sent_by_in(&mut conn, org_id, user_id, Some(role), actor, unix).await
    }
    .await;
    end_write(conn, changed).await
}

/// Removes a member. The last owner cannot be removed.
pub async fn remove(
    db: &Db,
    org_id: &str,
    user_id: &str,
    actor: &Actor<'_>,
    now: &str,
) -> Result<()> {
    let mut conn = db.begin().await?;
    let removed: Result<()> = async {
        lock_org(&mut conn, org_id).await?;
        let role = current_role(&mut conn, org_id, user_id).await?;
        check_authority(actor, role, None)?;
        if role == Role::Owner && owner_count(&mut conn, org_id).await? <= 1 {
            return Err(Error::conflict(
                "an organisation needs an owner: make someone else owner first",
            ));
        }
        sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        let details = serde_json::json!({ "role": role });
        record_in(
            &mut conn,
            org_id,
            actor,
            AuditAction::MemberRemove,
            user_id,
            details,
            now,
        )
        .await?;
        revoke_tokens_in(&mut conn, org_id, user_id, None, actor, now).await?;
        let unix =
            dbcrate_core::time::parse_rfc3339(now).unwrap_or_else(dbcrate_core::time::unix_now);
        invitations::withdraw_sent_by_in(&mut conn, org_id, user_id, None, actor, unix).await
    }
    .await;
    end_write(conn, removed).await
}

/// Gives a member a new one-time password (shown once) and ends their sessions. Only
/// for people who belong to this organisation alone, and never one's own account (use
/// a password change).
pub async fn reset_password(
    db: &Db,
    org_id: &str,
    user_id: &str,
    actor: &Actor<'_>,
    now: &str,
) -> Result<SecretString> {
    if actor.user_id == Some(user_id) {
        return Err(Error::invalid(
            "change your own password with your current one instead",
        ));
    }
    let password = passwords::one_time_password()?;
    let hash = passwords::hash_password(&password)?;
    let mut conn = db.begin().await?;
    let reset: Result<()> = async {
        lock_org(&mut conn, org_id).await?;
        let role = current_role(&mut conn, org_id, user_id).await?;
        check_authority(actor, role, None)?;
        let elsewhere: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM memberships WHERE user_id = $1 AND org_id <> $2",
        )
        .bind(user_id)
        .bind(org_id)
        .fetch_one(&mut *conn)
        .await?;
        if elsewhere > 0 {
            return Err(Error::conflict(
                "this person belongs to other organisations too, so only they can change \
                 their password",
            ));
        }
        sqlx::query("UPDATE users SET password_hash = $1, must_change_password = 1 WHERE id = $2")
            .bind(&hash)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        sessions::revoke_all_in(&mut conn, user_id, None).await?;
        record_in(
            &mut conn,
            org_id,
            actor,
            AuditAction::UserPasswordReset,
            user_id,
            serde_json::json!({}),
            now,
        )
        .await
    }
    .await;
    end_write(conn, reset).await?;
    Ok(password)
}
