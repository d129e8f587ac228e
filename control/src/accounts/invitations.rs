//! Invitations: the one way a person joins an organisation.
//!
//! An admin or owner invites an e-mail address with a role ([`create`]). That does the
//! same work and gives the same answer whether or not an account with the address exists
//! (it never looks), so inviting tells the inviter nothing about other organisations'
//! people, and nobody becomes a member without saying yes. The invitation carries a
//! one-time token (`dbci_…`, 256 random bits, shown once to the inviter, stored as
//! SHA-256) that the inviter hands to the person, who accepts it either signed in as the
//! account with that address ([`accept`]) or, when the address has no account yet, by
//! choosing a password, which creates the account ([`create_account`]).
//!
//! Invitations expire (a week by default), are used once, can be revoked by admins and
//! owners (invitations to be owner only by owners), and are withdrawn when their
//! inviter's membership no longer allows them ([`withdraw_sent_by_in`]). Every step is
//! audited in the organisation's chain, never with the token.

use crate::accounts::passwords;
use crate::accounts::roles;
use crate::accounts::roles::{Actor, Role};
use crate::accounts::users;
use crate::audit::{self, AuditAction, INSTANCE_CHAIN};
use crate::db::{end_write, Db};
use crate::error::{new_id, Code, Error, Result};
use crate::tokens::{new_token, token_hash};
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;
use sqlx::AnyConnection;

/// What every invitation token starts with.
pub const PREFIX: &str = "dbci_";
/// How long an invitation stays valid unless the inviter says otherwise.
pub const DEFAULT_LIFETIME_DAYS: i64 = 7;
/// The longest an invitation may stay valid.
pub const MAX_LIFETIME_DAYS: i64 = 30;

/// An invitation as stored (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Its id (`inv_…`).
    pub id: String,
    /// The organisation it is to.
    pub org_id: String,
    /// The invited address (lower case).
    pub email: String,
    /// The role it gives.
    pub role: Role,
    /// Who invited (`user:…`).
    pub invited_by: String,
    /// When (Unix seconds).
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// When it was accepted, if it was.
    pub accepted_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

impl Invitation {
    /// `pending`, `accepted`, `revoked` or `expired`, at `now`.
    pub fn status(&self, now: i64) -> &'static str {
        if self.accepted_at.is_some() {
            "accepted"
        } else if self.revoked_at.is_some() {
            "revoked"
        } else if now >= self.expires_at {
            "expired"
        } else {
            "pending"
        }
    }
}

/// What a new invitation should be.
#[derive(Debug, Clone, Copy)]
pub struct NewInvitation<'a> {
    /// The address to invite.
    pub email: &'a str,
    /// The role it gives.
    pub role: &'a str,
    /// Days until it expires (none: [`DEFAULT_LIFETIME_DAYS`]).
    pub lifetime_days: Option<i64>,
}

/// An accepted invitation.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The invitation.
    pub invitation_id: String,
    /// The organisation joined.
    pub org_id: String,
    /// With this role.
    pub role: Role,
    /// The member's user id.
    pub user_id: String,
}

const COLUMNS: &str = "id, org_id, email, role, invited_by, created_at, expires_at, accepted_at, \
                       revoked_at";

crate::rows::from_row!(Invitation {
    id,
    org_id,
    email,
    role,
    invited_by,
    created_at,
    expires_at,
    accepted_at,
    revoked_at,
});

/// Invites `email` to `org_id` with `role`, as `actor` (an admin or owner; nobody
/// invites above their own role). Returns the invitation and its token, shown once.
/// Refused when the address is a member here already or has a pending invitation here.
pub async fn create(
    db: &Db,
    org_id: &str,
    new: NewInvitation<'_>,
    actor: &Actor<'_>,
    now: i64,
) -> Result<(Invitation, SecretString)> {
    // The inviter's standing first, then the role's text: someone who may not invite is
    // refused whatever role they name.
    roles::check_authority(actor, Role::Viewer, None)?;
    let role: Role = new.role.parse()?;
    roles::check_authority(actor, Role::Viewer, Some(role))?;
    let email = users::normalise_email(new.email)?;
    let days = new.lifetime_days.unwrap_or(DEFAULT_LIFETIME_DAYS);
    if !(1..=MAX_LIFETIME_DAYS).contains(&days) {
        return Err(Error::invalid(format!(
            "expires_in_days must be 1-{MAX_LIFETIME_DAYS}"
        )));
    }
    let invitation = Invitation {
        id: new_id("inv")?,
        org_id: org_id.to_string(),
        email,
        role,
        invited_by: actor.name.to_string(),
        created_at: now,
        expires_at: now + days * 86_400,
        accepted_at: None,
        revoked_at: None,
    };
    let token = new_token(PREFIX)?;
    let mut conn = db.begin().await?;
    let stored: Result<()> = async {
        roles::lock_org(&mut conn, org_id).await?;
        // Only this organisation's own members and invitations are read: whether the
        // address has an account (here or anywhere) is never asked, so both cases do the
        // same work.
        let members: Vec<String> = sqlx::query_scalar(
            "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1",
        )
        .bind(org_id)
        .fetch_all(&mut *conn)
        .await?;
        if members.contains(&invitation.email) {
            return Err(Error::conflict(format!(
                "{} is a member already",
                invitation.email
            )));
        }
        let pending: Option<String> = sqlx::query_scalar(
            "SELECT id FROM invitations WHERE org_id = $1 AND email = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(org_id)
        .bind(&invitation.email)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(pending) = pending {
            return Err(Error::conflict(format!(
                "{} has a pending invitation already ({pending}); revoke it to invite again",
                invitation.email
            )));
        }
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&invitation.id)
        .bind(org_id)
        .bind(&invitation.email)
        .bind(invitation.role)
        .bind(token_hash(token.expose_secret()))
        .bind(actor.name)
        .bind(now)
        .bind(invitation.expires_at)
        .execute(&mut *conn)
        .await?;
        let details = serde_json::json!({
            "email": invitation.email,
            "role": invitation.role,
            "expires_at": invitation.expires_at,
        });
        audit::record_in(
            &mut conn,
            org_id,
            actor.name,
            AuditAction::InvitationCreate,
            &format!("invitation:{}", invitation.id),
            details,
            now,
        )
        .await
    }
    .await;
    end_write(conn, stored).await?;
    Ok((invitation, token))
}

/// The organisation's invitations, newest first.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<Invitation>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations WHERE org_id = $1 ORDER BY created_at DESC, id"
    ))
    .bind(org_id)
    .fetch_all(db.pool())
    .await?)
}

/// Revokes a pending (or expired) invitation of the organisation: its token stops
/// working. Only owners revoke invitations to be owner.
pub async fn revoke(
    db: &Db,
    org_id: &str,
    invitation_id: &str,
    actor: &Actor<'_>,
    now: i64,
) -> Result<()> {
    roles::check_authority(actor, Role::Viewer, None)?;
    let mut conn = db.begin().await?;
    let revoked: Result<()> = async {
        roles::lock_org(&mut conn, org_id).await?;
        let invitation: Invitation = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM invitations WHERE id = $1 AND org_id = $2"
        ))
        .bind(invitation_id)
        .bind(org_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::not_found("no such invitation"))?;
        if invitation.role > actor.role {
            return Err(Error::new(
                Code::Forbidden,
                "only an owner can revoke an invitation to be owner",
            ));
        }
        if invitation.accepted_at.is_some() {
            return Err(Error::conflict(
                "this invitation was accepted already: remove the member instead",
            ));
        }
        if invitation.revoked_at.is_some() {
            return Err(Error::conflict("this invitation was revoked already"));
        }
        revoke_in(&mut conn, &invitation, actor.name, None, now).await
    }
    .await;
    end_write(conn, revoked).await
}

async fn revoke_in(
    conn: &mut AnyConnection,
    invitation: &Invitation,
    actor: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<()> {
    sqlx::query("UPDATE invitations SET revoked_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&invitation.id)
        .execute(&mut *conn)
        .await?;
    let mut details = serde_json::json!({ "email": invitation.email, "role": invitation.role });
    if let Some(reason) = reason {
        details["reason"] = reason.into();
    }
    audit::record_in(
        conn,
        &invitation.org_id,
        actor,
        AuditAction::InvitationRevoke,
        &format!("invitation:{}", invitation.id),
        details,
        now,
    )
    .await
}

/// Withdraws the pending invitations `user_id` sent in `org_id` that their new role
/// (`None`: removed) no longer allows: all of them when they can no longer invite
/// (below admin), else those above the new role. Each is audited as
/// `invitation.revoke`. Runs inside the caller's transaction.
pub async fn withdraw_sent_by_in(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    new_role: Option<Role>,
    actor: &Actor<'_>,
    now: i64,
) -> Result<()> {
    let limit = new_role.filter(|r| *r >= Role::Admin);
    let sent: Vec<Invitation> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations WHERE org_id = $1 AND invited_by = $2 \
         AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3"
    ))
    .bind(org_id)
    .bind(format!("user:{user_id}"))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    for invitation in sent {
        if limit.is_some_and(|max| invitation.role <= max) {
            continue;
        }
        let reason = "its inviter's membership changed";
        revoke_in(conn, &invitation, actor.name, Some(reason), now).await?;
    }
    Ok(())
}

/// The invitation a token names. A malformed or unknown token is invalid input naming
/// the field (tokens are 256 random bits: there is nothing to guess).
async fn find(db: &Db, token: &SecretString) -> Result<Invitation> {
    let text = token.expose_secret();
    let well_formed = text.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !well_formed {
        return Err(Error::invalid(format!(
            "token: not an invitation token (those start with {PREFIX}); copy the whole token"
        )));
    }
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM invitations WHERE token_hash = $1"
    ))
    .bind(token_hash(text))
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| {
        Error::invalid("token: no such invitation; check that the whole token was copied")
    })
}

/// Records a refused use of an invitation in its organisation's chain.
async fn refused(
    db: &Db,
    chain: &str,
    invitation: &Invitation,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<()> {
    let mut details = serde_json::json!({ "reason": reason });
    if chain == INSTANCE_CHAIN {
        details["org_id"] = invitation.org_id.clone().into();
    }
    audit::record(
        db,
        chain,
        actor,
        AuditAction::InvitationRefused,
        &format!("invitation:{}", invitation.id),
        details,
        now,
    )
    .await
}

/// Refuses (and audits) an invitation that is used, revoked or expired.
async fn check_usable(db: &Db, invitation: &Invitation, actor: &str, now: i64) -> Result<()> {
    let (reason, message) = match invitation.status(now) {
        "pending" => return Ok(()),
        "accepted" => ("used", "this invitation was used already"),
        "revoked" => (
            "revoked",
            "this invitation was revoked; ask the organisation's admins for a new one",
        ),
        _ => (
            "expired",
            "this invitation has expired; ask the organisation's admins for a new one",
        ),
    };
    refused(db, &invitation.org_id, invitation, actor, reason, now).await?;
    Err(Error::conflict(message))
}

/// Marks the invitation used and makes `user_id` a member with its role, inside the
/// caller's transaction; the organisation's row is locked first, and an invitation
/// used, revoked or expired meanwhile is refused.
async fn join_in(
    conn: &mut AnyConnection,
    invitation: &Invitation,
    user_id: &str,
    now: i64,
) -> Result<()> {
    roles::lock_org(conn, &invitation.org_id).await?;
    let taken = sqlx::query(
        "UPDATE invitations SET accepted_at = $1, accepted_by = $2 WHERE id = $3 \
         AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(user_id)
    .bind(&invitation.id)
    .execute(&mut *conn)
    .await?;
    if taken.rows_affected() != 1 {
        return Err(Error::conflict(
            "this invitation was used, revoked or expired meanwhile",
        ));
    }
    let member: i64 =
        sqlx::query_scalar("SELECT count(*) FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(&invitation.org_id)
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?;
    if member > 0 {
        return Err(Error::conflict(
            "you are a member of this organisation already",
        ));
    }
    let actor = format!("user:{user_id}");
    let at = rfc3339(now);
    users::add_member_in(
        conn,
        &invitation.org_id,
        user_id,
        invitation.role,
        &actor,
        &at,
    )
    .await?;
    let details = serde_json::json!({
        "user_id": user_id,
        "role": invitation.role,
        "invited_by": invitation.invited_by,
    });
    audit::record_in(
        conn,
        &invitation.org_id,
        &actor,
        AuditAction::InvitationAccept,
        &format!("invitation:{}", invitation.id),
        details,
        now,
    )
    .await
}

fn accepted(invitation: Invitation, user_id: String) -> Accepted {
    Accepted {
        invitation_id: invitation.id,
        org_id: invitation.org_id,
        role: invitation.role,
        user_id,
    }
}

/// Accepts an invitation as the signed-in account `user_id`, which must have the
/// invited address: anybody else holding the token (the inviter included) is refused,
/// and the invitation stays pending.
pub async fn accept(db: &Db, token: &SecretString, user_id: &str, now: i64) -> Result<Accepted> {
    let invitation = find(db, token).await?;
    let actor = format!("user:{user_id}");
    check_usable(db, &invitation, &actor, now).await?;
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(db.pool())
        .await?;
    if email != invitation.email {
        refused(
            db,
            &invitation.org_id,
            &invitation,
            &actor,
            "another account",
            now,
        )
        .await?;
        return Err(Error::new(
            Code::Forbidden,
            "this invitation is for another e-mail address: sign in as the invited person \
             to accept it",
        ));
    }
    let mut conn = db.begin().await?;
    let joined = join_in(&mut conn, &invitation, user_id, now).await;
    end_write(conn, joined).await?;
    Ok(accepted(invitation, user_id.to_string()))
}

/// Accepts an invitation for an address that has no account yet: creates the account
/// with `new_password` (the person's own; no change needed at first sign-in) and makes
/// it a member. An address that has an account must sign in and [`accept`] instead.
pub async fn create_account(
    db: &Db,
    token: &SecretString,
    new_password: &SecretString,
    now: i64,
) -> Result<Accepted> {
    let invitation = find(db, token).await?;
    passwords::check_new_password(new_password)
        .map_err(|e| Error::invalid(format!("new_password: {}", e.message)))?;
    check_usable(db, &invitation, "anonymous", now).await?;
    let hash = passwords::hash_password_off_thread(new_password).await?;
    let mut conn = db.begin().await?;
    let created: Result<Option<String>> = async {
        roles::lock_org(&mut conn, &invitation.org_id).await?;
        let existing: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(&invitation.email)
            .fetch_optional(&mut *conn)
            .await?;
        if existing.is_some() {
            return Ok(None);
        }
        let user_id =
            users::create_hashed_in(&mut conn, &invitation.email, &hash, false, &rfc3339(now))
                .await?;
        let actor = format!("user:{user_id}");
        let details = serde_json::json!({
            "email": invitation.email, "invitation": invitation.id,
        });
        audit::record_in(
            &mut conn,
            INSTANCE_CHAIN,
            &actor,
            AuditAction::UserCreate,
            &actor,
            details,
            now,
        )
        .await?;
        join_in(&mut conn, &invitation, &user_id, now).await?;
        Ok(Some(user_id))
    }
    .await;
    let Some(user_id) = end_write(conn, created).await? else {
        // On the instance chain only: the organisation's admins do not learn from their
        // log that the address has an account.
        let reason = "an account with the address exists";
        refused(db, INSTANCE_CHAIN, &invitation, "anonymous", reason, now).await?;
        return Err(Error::conflict(
            "an account with this e-mail address exists already: sign in as it and accept \
             with POST /api/v1/invitations/accept",
        ));
    };
    Ok(accepted(invitation, user_id))
}
