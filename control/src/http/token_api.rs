//! `/api/v1/orgs/{org}/api-tokens…`: tokens for automation. Listing needs admin;
//! creating and revoking need a person with admin or owner (a token cannot mint
//! tokens).

use super::auth::{known_id, org_access, person_access, Caller};
use super::error::ApiResult;
use super::error_doc::{BodyErrors, OrgErrors};
use super::extract::{Body, Path};
use super::AppState;
use crate::accounts::api_tokens::{self, TokenInfo};
use crate::accounts::roles::Role;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// An API token as listed (never its value).
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    created_at: i64,
    /// Who made it (`user:…`).
    created_by: String,
    /// When it stops working, if ever.
    #[schema(required = true)]
    expires_at: Option<i64>,
    /// `tok_…`.
    id: String,
    #[schema(required = true)]
    last_used_at: Option<i64>,
    /// What it is for.
    name: String,
    #[schema(required = true)]
    revoked_at: Option<i64>,
    /// The role it acts with.
    role: String,
}

impl Token {
    fn of(t: TokenInfo) -> Self {
        Self {
            created_at: t.created_at,
            created_by: t.created_by,
            expires_at: t.expires_at,
            id: t.id,
            last_used_at: t.last_used_at,
            name: t.name,
            revoked_at: t.revoked_at,
            role: t.role.to_string(),
        }
    }
}

/// What `GET /api/v1/orgs/{org}/api-tokens` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    items: Vec<Token>,
}

/// What `POST /api/v1/orgs/{org}/api-tokens` answers: the token with its value, shown once.
// `token` sorts after every field of `Token`, so the flattened answer's keys stay in order.
#[derive(Debug, Serialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    listed: Token,
    /// The token (`dbct_…`), in this answer only.
    token: String,
}

// By hand, because the derive documents a flattened field as `allOf`: the document
// describes one flat object, `Token`'s fields and `token`.
impl PartialSchema for CreatedToken {
    fn schema() -> RefOr<Schema> {
        let RefOr::T(Schema::Object(mut object)) = Token::schema() else {
            unreachable!("the derived schema of a struct is an object")
        };
        object.description = Some(
            "What `POST /api/v1/orgs/{org}/api-tokens` answers: the token with its value, \
             shown once."
                .into(),
        );
        let token = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("The token (`dbct_…`), in this answer only."));
        object.properties.insert("token".into(), token.into());
        object.required.push("token".into());
        RefOr::T(Schema::Object(object))
    }
}

impl ToSchema for CreatedToken {}

/// What `DELETE /api/v1/orgs/{org}/api-tokens/{token}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenRevoked {
    /// The token's id.
    revoked: String,
}

/// The organisation's tokens (never their values).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/api-tokens",
    operation_id = "list_api_tokens",
    tag = "api-tokens",
    summary = "The organisation's API tokens (never their values)",
    description = "Who: admin or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Tokens", body = TokenList),
        OrgErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<TokenList>> {
    org_access(&state, caller, &org_id, Role::Admin).await?;
    let items = api_tokens::list(&state.db, &org_id)
        .await?
        .into_iter()
        .map(Token::of)
        .collect();
    Ok(Json(TokenList { items }))
}

/// `POST /api/v1/orgs/{org}/api-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: String,
    /// `owner`, `admin`, `operator` or `viewer`, no higher than the creator's.
    role: String,
    /// 1 to 366 days; none: no expiry.
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// Creates a token; its value is in this answer only.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/api-tokens",
    operation_id = "create_api_token",
    tag = "api-tokens",
    summary = "Create an API token (dbct_…, shown once) with a role no higher than the creator's",
    description = "Who: admin or higher, as a person.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = CreateRequest,
    security(("session" = [])),
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        OrgErrors,
        BodyErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<CreateRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let access = person_access(&state, caller, &org_id, Role::Admin).await?;
    let (info, token) = api_tokens::create(
        &state.db,
        &org_id,
        api_tokens::NewToken {
            name: &request.name,
            role: &request.role,
            lifetime_days: request.expires_in_days,
        },
        &access.actor,
        access.role,
        state.now(),
    )
    .await?;
    let body = CreatedToken {
        listed: Token::of(info),
        token: token.expose_secret().to_string(),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Revokes a token.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/api-tokens/{token}",
    operation_id = "revoke_api_token",
    tag = "api-tokens",
    summary = "Revoke an API token",
    description = "Who: admin or higher, as a person.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("token" = String, Path, description = "The token's id, tok_…"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "Revoked", body = TokenRevoked),
        OrgErrors,
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, token_id)): Path<(String, String)>,
) -> ApiResult<Json<TokenRevoked>> {
    let access = person_access(&state, caller, &org_id, Role::Admin).await?;
    known_id(&token_id, "tok")?;
    api_tokens::revoke(&state.db, &org_id, &token_id, &access.actor, state.now()).await?;
    Ok(Json(TokenRevoked { revoked: token_id }))
}
