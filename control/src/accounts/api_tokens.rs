//! API tokens for automation: each belongs to one organisation with one role, is shown
//! once (`dbct_…`), stored as its SHA-256, may expire, and can be revoked. Creating and
//! revoking are audited in the organisation's chain.
//!
//! A token acts with its own role, which can be no higher than its creator's at
//! creation; it cannot manage people, tokens or second factors, and cannot export the
//! recovery key (that needs a person with a second factor).

use crate::accounts::roles::Role;
use crate::audit::{self, AuditAction, AuditEvent};
use crate::db::{end_write, Db};
use crate::error::{new_id, Code, Error, Result};
use crate::tokens::{new_token, token_hash};
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;

/// What every token starts with, so secret scanners and people recognise one.
pub const PREFIX: &str = "dbct_";
/// The longest lifetime a token may be given.
pub const MAX_LIFETIME_DAYS: i64 = 366;

/// A token as listed (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Its id (`tok_…`).
    pub id: String,
    /// What it is for.
    pub name: String,
    /// The role it acts with.
    pub role: Role,
    /// Who created it.
    pub created_by: String,
    /// When (Unix seconds).
    pub created_at: i64,
    /// When it stops working, if ever.
    pub expires_at: Option<i64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When it was last used.
    pub last_used_at: Option<i64>,
}

/// A token's holder, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCaller {
    /// The token's id.
    pub id: String,
    /// The one organisation it works in.
    pub org_id: String,
    /// Its role there.
    pub role: Role,
}

crate::rows::from_row!(TokenInfo {
    id,
    name,
    role,
    created_by,
    created_at,
    expires_at,
    revoked_at,
    last_used_at,
});

/// What a new token should be.
#[derive(Debug, Clone, Copy)]
pub struct NewToken<'a> {
    /// What it is for.
    pub name: &'a str,
    /// The role it acts with.
    pub role: &'a str,
    /// Days until it stops working (none: until revoked).
    pub lifetime_days: Option<i64>,
}

/// Creates a token for `actor` (who holds `actor_role` in the organisation); returns
/// its info and its value (shown once).
pub async fn create(
    db: &Db,
    org_id: &str,
    new: NewToken<'_>,
    actor: &str,
    actor_role: Role,
    now: i64,
) -> Result<(TokenInfo, SecretString)> {
    let NewToken {
        name,
        role,
        lifetime_days,
    } = new;
    let name = &crate::names::display_name("name", name, 100)?;
    let role: Role = role.parse()?;
    if role > actor_role {
        return Err(Error::new(
            Code::Forbidden,
            "a token cannot have a role above its creator's",
        ));
    }
    if let Some(days) = lifetime_days {
        if !(1..=MAX_LIFETIME_DAYS).contains(&days) {
            return Err(Error::invalid(format!(
                "expires_in_days must be 1-{MAX_LIFETIME_DAYS}"
            )));
        }
    }
    let info = TokenInfo {
        id: new_id("tok")?,
        name: name.to_string(),
        role,
        created_by: actor.to_string(),
        created_at: now,
        expires_at: lifetime_days.map(|d| now + d * 86_400),
        revoked_at: None,
        last_used_at: None,
    };
    let token = new_token(PREFIX)?;
    let mut conn = db.begin().await?;
    let stored: Result<()> = async {
        sqlx::query(
            "INSERT INTO api_tokens (id, org_id, name, role, token_hash, created_by, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&info.id)
        .bind(org_id)
        .bind(&info.name)
        .bind(info.role)
        .bind(token_hash(token.expose_secret()))
        .bind(actor)
        .bind(now)
        .bind(info.expires_at)
        .execute(&mut *conn)
        .await?;
        let details = serde_json::json!({
            "name": info.name, "role": info.role, "expires_at": info.expires_at,
        })
        .to_string();
        audit::append_in(
            &mut conn,
            &AuditEvent {
                org_id,
                actor,
                action: AuditAction::ApiTokenCreate,
                target: &format!("api_token:{}", info.id),
                details: &details,
            },
            &rfc3339(now),
        )
        .await?;
        Ok(())
    }
    .await;
    end_write(conn, stored).await?;
    Ok((info, token))
}

/// The organisation's tokens, newest first.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<TokenInfo>> {
    Ok(sqlx::query_as(
        "SELECT id, name, role, created_by, created_at, expires_at, revoked_at, last_used_at \
         FROM api_tokens WHERE org_id = $1 ORDER BY created_at DESC, id",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?)
}

/// Revokes a token of the organisation; it stops working at once.
pub async fn revoke(db: &Db, org_id: &str, token_id: &str, actor: &str, now: i64) -> Result<()> {
    let mut conn = db.begin().await?;
    let revoked: Result<()> = async {
        let updated = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 \
             WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_id)
        .bind(org_id)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(Error::not_found("no such token (or revoked already)"));
        }
        audit::append_in(
            &mut conn,
            &AuditEvent {
                org_id,
                actor,
                action: AuditAction::ApiTokenRevoke,
                target: &format!("api_token:{token_id}"),
                details: "{}",
            },
            &rfc3339(now),
        )
        .await?;
        Ok(())
    }
    .await;
    end_write(conn, revoked).await
}

/// A token as [`authenticate`] finds it by its hash.
struct StoredToken {
    id: String,
    org_id: String,
    role: Role,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

crate::rows::from_row!(StoredToken {
    id,
    org_id,
    role,
    expires_at,
    revoked_at
});

/// The token's holder, if the token is live; records its use.
pub async fn authenticate(db: &Db, token: &SecretString, now: i64) -> Result<TokenCaller> {
    let hash = token_hash(token.expose_secret());
    let row: Option<StoredToken> = sqlx::query_as(
        "SELECT id, org_id, role, expires_at, revoked_at FROM api_tokens WHERE token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(db.pool())
    .await?;
    let refused = || {
        Error::new(
            Code::NotSignedIn,
            "the API token is unknown, expired or revoked",
        )
    };
    let StoredToken {
        id,
        org_id,
        role,
        expires_at,
        revoked_at,
    } = row.ok_or_else(refused)?;
    if revoked_at.is_some() || expires_at.is_some_and(|at| now >= at) {
        return Err(refused());
    }
    let caller = TokenCaller { id, org_id, role };
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&caller.id)
        .execute(db.pool())
        .await?;
    Ok(caller)
}
