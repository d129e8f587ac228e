//! Flow 10, members and API tokens (admins and owners, as people): the members with a
//! role to change, a password to reset (a one-time password, shown once) and removal,
//! each behind the same rules as the API (`accounts::members`: only owners touch owners,
//! the last owner stays, nobody acts above their own role); invitations — a new one's
//! token shown once — and API tokens — a new one shown once, revocable.

use super::org::{self, Member, OrgPage};
use crate::accounts::api_tokens::{self, NewToken, TokenInfo};
use crate::accounts::invitations::{self, Invitation, NewInvitation};
use crate::accounts::members::{self, Member as Person};
use crate::accounts::roles::Role;
use crate::error::Error;
use crate::http::AppState;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page};
use crate::web::session::Visitor;
use crate::web::when;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

const ROLES: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::Owner];

/// What the page may be told by the one before it.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// Every form of the page (each sends its own fields).
#[derive(Debug, Default, Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

fn role_select(name: &str, id: &str, chosen: Role, up_to: Role) -> Markup {
    html! {
        select id=(id) name=(name) {
            @for role in ROLES.iter().filter(|r| **r <= up_to) {
                option value=(role.as_str()) selected[*role == chosen] { (role.as_str()) }
            }
        }
    }
}

fn members_table(m: &Member, visitor: &Visitor, people: &[Person]) -> Markup {
    html! {
        table.stack {
            caption.hint { "Who belongs to " (m.org_name) "." }
            thead { tr { th scope="col" { "Person" } th scope="col" { "Role" } th scope="col" { "Actions" } } }
            tbody {
                @for p in people {
                    @let touchable = p.role < Role::Owner || m.role == Role::Owner;
                    @let own = p.user_id == visitor.session.user_id;
                    tr {
                        th scope="row" { (p.email) }
                        td data-label="Role" {
                            @if touchable {
                                form.inline method="post" action=(m.path(&format!("members/{}/role", p.user_id))) {
                                    (csrf_field(&visitor.csrf))
                                    label.visually-hidden for=(format!("role-{}", p.user_id)) { "Role of " (p.email) }
                                    (role_select("role", &format!("role-{}", p.user_id), p.role, m.role))
                                    button type="submit" { "Change" span.visually-hidden { " the role of " (p.email) } }
                                }
                            } @else { (p.role) }
                        }
                        td data-label="Actions" {
                            @if touchable && !own {
                                a href=(m.path(&format!("members/{}/remove", p.user_id))) { "Remove" span.visually-hidden { " " (p.email) } "…" }
                                " · "
                                a href=(m.path(&format!("members/{}/password-reset", p.user_id))) { "Reset password" span.visually-hidden { " of " (p.email) } "…" }
                            } @else if own { "you" }
                        }
                    }
                }
            }
        }
    }
}

fn invitations_section(m: &Member, visitor: &Visitor, list: &[Invitation], now: i64) -> Markup {
    let mut email = Field::new("E-mail address", "email", "email", "off");
    email.hint = Some("They become a member when they accept with the token the next page shows.");
    let pending: Vec<&Invitation> = list.iter().filter(|i| i.status(now) == "pending").collect();
    html! {
        h2 { "Invite someone" }
        @if !pending.is_empty() {
            ul {
                @for i in &pending {
                    li { (i.email) " as " (i.role) ", invited " (when::time(i.created_at, now)) ", expires " (when::time(i.expires_at, now)) }
                }
            }
        }
        form method="post" action=(m.path("members")) {
            (csrf_field(&visitor.csrf))
            (field(email))
            div.field { label for="invite-role" { "Role" } (role_select("role", "invite-role", Role::Viewer, m.role)) }
            div.actions { button type="submit" { "Invite" } }
        }
    }
}

fn tokens_section(m: &Member, visitor: &Visitor, list: &[TokenInfo], now: i64) -> Markup {
    let mut name = Field::new("What it is for", "name", "text", "off");
    name.hint = Some("e.g. monitoring, terraform.");
    let live: Vec<&TokenInfo> = list.iter().filter(|t| t.revoked_at.is_none()).collect();
    html! {
        h2 { "API tokens" }
        @if live.is_empty() { p { "No API tokens." } }
        @else {
            table.stack {
                caption.hint { "Tokens programs use, each with a role." }
                thead { tr { th scope="col" { "Token" } th scope="col" { "Role" } th scope="col" { "Last used" } th scope="col" { "Action" } } }
                tbody {
                    @for t in &live {
                        tr {
                            th scope="row" { (t.name) br; code.id { (t.id) } }
                            td data-label="Role" { (t.role) }
                            td data-label="Last used" { @match t.last_used_at { Some(at) => (when::time(at, now)), None => "never" } }
                            td data-label="Action" {
                                form.inline method="post" action=(m.path(&format!("api-tokens/{}/revoke", t.id))) {
                                    (csrf_field(&visitor.csrf))
                                    button.danger type="submit" { "Revoke" span.visually-hidden { " " (t.name) } }
                                }
                            }
                        }
                    }
                }
            }
        }
        form method="post" action=(m.path("api-tokens")) {
            (csrf_field(&visitor.csrf))
            (field(name))
            div.field { label for="token-role" { "Role" } (role_select("role", "token-role", Role::Viewer, m.role)) }
            div.actions { button type="submit" { "Create token" } }
        }
    }
}

async fn members_page(
    state: &AppState,
    m: &Member,
    visitor: &Visitor,
    message: Option<Markup>,
) -> Result<Markup, Response> {
    let failed = |e: Error| layout::failure(&e);
    let people = members::list(&state.db, &m.org_id).await.map_err(failed)?;
    let invited = invitations::list(&state.db, &m.org_id)
        .await
        .map_err(failed)?;
    let tokens = api_tokens::list(&state.db, &m.org_id)
        .await
        .map_err(failed)?;
    let now = state.now();
    Ok(page(
        "Members",
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(m, "members"))
            @if let Some(message) = message { (message) }
            (members_table(m, visitor, &people))
            (invitations_section(m, visitor, &invited, now))
            (tokens_section(m, visitor, &tokens, now))
        },
    ))
}

fn done_message(done: &str) -> Option<Markup> {
    let text = match done {
        "role" => "The role is changed.",
        "removed" => "The member is removed; their account stays.",
        "revoked" => "The token is revoked: it works no more.",
        _ => return None,
    };
    Some(notice(text))
}

/// `GET /orgs/{org}/members`.
pub async fn show(
    State(state): State<AppState>,
    OrgPage { visitor, member: m }: OrgPage,
    Query(done): Query<Done>,
) -> Response {
    if let Some(refused) = m.refused_below(Role::Admin) {
        return refused;
    }
    match members_page(&state, &m, &visitor, done_message(&done.done)).await {
        Ok(body) => answer(StatusCode::OK, body),
        Err(failed) => failed,
    }
}

/// The page again with why an action was refused.
async fn refused_with(state: &AppState, m: &Member, visitor: &Visitor, e: &Error) -> Response {
    let (status, message) = layout::explain(e);
    match members_page(state, m, visitor, Some(error_message(&message))).await {
        Ok(body) => answer(status, body),
        Err(failed) => failed,
    }
}

/// A page that shows a secret once, with a way back.
fn shown_once(
    m: &Member,
    visitor: &Visitor,
    title: &str,
    what: &str,
    secret: &str,
    then: Markup,
) -> Response {
    answer(
        StatusCode::CREATED,
        page(
            title,
            Some(org::nav(visitor)),
            html! {
                (org::org_nav(m, "members"))
                (notice(&format!("{what} is shown once: copy it now.")))
                pre.command { code.secret-once { (secret) } }
                (then)
                p { a href=(m.path("members")) { "Back to the members" } }
            },
        ),
    )
}

/// `POST /orgs/{org}/members`: an invitation (`accounts::invitations::create`), its
/// token shown once.
pub async fn invite(
    State(state): State<AppState>,
    OrgPage { visitor, member: m }: OrgPage,
    Form(form): Form<MemberForm>,
) -> Response {
    if let Some(refused) = m.refused_below(Role::Admin) {
        return refused;
    }
    let new = NewInvitation {
        email: &form.email,
        role: &form.role,
        lifetime_days: None,
    };
    let actor = m.as_actor(&visitor.session.user_id);
    match invitations::create(&state.db, &m.org_id, new, &actor, state.now()).await {
        Ok((invitation, token)) => shown_once(
            &m,
            &visitor,
            &format!("Invitation for {}", invitation.email),
            "The invitation token",
            token.expose_secret(),
            html! {
                p {
                    "Give it to " (invitation.email) " by a channel you trust. They open "
                    code { (super::invitations::ACCEPT_PATH) } " on this dashboard and paste it: \
                     signed in, if they have an account for that address; otherwise they choose \
                     their password there. (API clients: POST /api/v1/invitations/accept or \
                     …/create-account.) It expires " (when::time(invitation.expires_at, state.now())) "."
                }
            },
        ),
        Err(e) => refused_with(&state, &m, &visitor, &e).await,
    }
}

/// `POST /orgs/{org}/members/{user}/role`: `accounts::members::change_role`.
pub async fn change_role(
    State(state): State<AppState>,
    OrgPage { visitor, member: m }: OrgPage,
    Path((_, user_id)): Path<(String, String)>,
    Form(form): Form<MemberForm>,
) -> Response {
    if let Some(refused) = m.refused_below(Role::Admin) {
        return refused;
    }
    let actor = m.as_actor(&visitor.session.user_id);
    let changed = members::change_role(
        &state.db,
        &m.org_id,
        &user_id,
        &form.role,
        &actor,
        &state.now_rfc3339(),
    )
    .await;
    match changed {
        Ok(()) => Redirect::to(&m.path("members?done=role")).into_response(),
        Err(e) => refused_with(&state, &m, &visitor, &e).await,
    }
}

/// What removing or resetting is about to do, named.
const CONFIRMS: [(&str, &str, &str); 2] = [
    ("remove", "Remove", "They lose access to this organisation at once; their account stays, as do the backups and the audit rows."),
    ("password-reset", "Reset the password of", "They get a one-time password, shown to you once, and must choose a new one when they sign in; their sessions end now."),
];

/// `GET /orgs/{org}/members/{user}/{remove|password-reset}`: a confirmation that names
/// the person.
pub async fn confirm(
    State(state): State<AppState>,
    OrgPage { visitor, member: m }: OrgPage,
    Path((_, user_id, action)): Path<(String, String, String)>,
) -> Response {
    if let Some(refused) = m.refused_below(Role::Admin) {
        return refused;
    }
    let Some((_, verb, meaning)) = CONFIRMS.iter().find(|(a, _, _)| *a == action) else {
        return layout::not_found();
    };
    let people = match members::list(&state.db, &m.org_id).await {
        Ok(people) => people,
        Err(e) => return layout::failure(&e),
    };
    let Some(person) = people.into_iter().find(|p| p.user_id == user_id) else {
        return layout::not_found();
    };
    answer(
        StatusCode::OK,
        page(
            &format!("{verb} {}?", person.email),
            Some(org::nav(&visitor)),
            html! {
                (org::org_nav(&m, "members"))
                p { (meaning) }
                form method="post" action=(m.path(&format!("members/{}/{action}", person.user_id))) {
                    (csrf_field(&visitor.csrf))
                    div.actions {
                        button.danger type="submit" { (verb) " " (person.email) }
                        a href=(m.path("members")) { "Cancel" }
                    }
                }
            },
        ),
    )
}

/// `POST /orgs/{org}/members/{user}/{remove|password-reset}`.
pub async fn act(
    State(state): State<AppState>,
    OrgPage { visitor, member: m }: OrgPage,
    Path((_, user_id, action)): Path<(String, String, String)>,
) -> Response {
    if let Some(refused) = m.refused_below(Role::Admin) {
        return refused;
    }
    let actor = m.as_actor(&visitor.session.user_id);
    let now = state.now_rfc3339();
    match action.as_str() {
        "remove" => match members::remove(&state.db, &m.org_id, &user_id, &actor, &now).await {
            Ok(()) => Redirect::to(&m.path("members?done=removed")).into_response(),
            Err(e) => refused_with(&state, &m, &visitor, &e).await,
        },
        "password-reset" => {
            match members::reset_password(&state.db, &m.org_id, &user_id, &actor, &now).await {
                Ok(password) => shown_once(
                    &m,
                    &visitor,
                    "A one-time password",
                    "The one-time password",
                    password.expose_secret(),
                    html! { p { "Give it to them by a channel you trust; they choose their own when they sign in with it." } },
                ),
                Err(e) => refused_with(&state, &m, &visitor, &e).await,
            }
        }
        _ => layout::not_found(),
    }
}

/// `POST /orgs/{org}/api-tokens`: `accounts::api_tokens::create`, the token shown once.
pub async fn create_token(
    State(state): State<AppState>,
    OrgPage { visitor, member: m }: OrgPage,
    Form(form): Form<MemberForm>,
) -> Response {
    if let Some(refused) = m.refused_below(Role::Admin) {
        return refused;
    }
    let new = NewToken {
        name: &form.name,
        role: &form.role,
        lifetime_days: None,
    };
    match api_tokens::create(&state.db, &m.org_id, new, &m.actor, m.role, state.now()).await {
        Ok((info, token)) => shown_once(
            &m,
            &visitor,
            &format!("API token {}", info.name),
            "The token",
            token.expose_secret(),
            html! { p { "Programs send it as " code { "Authorization: Bearer …" } "; it acts as " (info.role) "." } },
        ),
        Err(e) => refused_with(&state, &m, &visitor, &e).await,
    }
}

/// `POST /orgs/{org}/api-tokens/{token}/revoke`: `accounts::api_tokens::revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    OrgPage { visitor, member: m }: OrgPage,
    Path((_, token_id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = m.refused_below(Role::Admin) {
        return refused;
    }
    match api_tokens::revoke(&state.db, &m.org_id, &token_id, &m.actor, state.now()).await {
        Ok(()) => Redirect::to(&m.path("members?done=revoked")).into_response(),
        Err(e) => refused_with(&state, &m, &visitor, &e).await,
    }
}
