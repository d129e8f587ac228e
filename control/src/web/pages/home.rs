//! The landing page after sign-in: the organisations the person belongs to, their role
//! in each and what that role may do, and whether their account has a second factor.

use crate::accounts::roles::Role;
use crate::accounts::{memberships, second_factor};
use crate::http::AppState;
use crate::web::layout::{self, answer, notice, page, Area, Nav};
use crate::web::session::Person;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

/// What a role may do, in the words of `accounts::roles`.
fn role_meaning(role: Role) -> &'static str {
    match role {
        Role::Owner => "everything, including owners and the organisation's key",
        Role::Admin => "databases, destinations, schedules, agents and members",
        Role::Operator => "runs backups and restores; reads everything",
        Role::Viewer => "reads everything",
    }
}

fn key_mode_text(mode: &str) -> &'static str {
    match mode {
        "customer_sealed" => "sealed with the customer's passphrase",
        _ => "held by this control plane",
    }
}

/// `GET /`.
pub async fn show(State(state): State<AppState>, Person(visitor): Person) -> Response {
    let user_id = &visitor.session.user_id;
    let orgs = match memberships::of_user(&state.db, user_id).await {
        Ok(orgs) => orgs,
        Err(e) => return layout::failure(&e),
    };
    let second_factor = match second_factor::is_enabled(&state.db, user_id).await {
        Ok(on) => on,
        Err(e) => return layout::failure(&e),
    };
    let nav = Nav {
        email: &visitor.email,
        csrf: &visitor.csrf,
        current: Some(Area::Organisations),
        menu: true,
    };
    answer(
        StatusCode::OK,
        page(
            "Your organisations",
            Some(nav),
            html! {
                @if !second_factor {
                    (notice("Your account has no second factor yet: anyone with your password \
                             could sign in."))
                    p { a href="/account/second-factor" { "Set up an authenticator app" } }
                }
                @if orgs.is_empty() {
                    p { "You belong to no organisation yet. An owner or admin of one can invite you." }
                } @else {
                    table.stack {
                        caption.hint { "Organisations you belong to, and your role in each." }
                        thead {
                            tr {
                                th scope="col" { "Organisation" }
                                th scope="col" { "Your role" }
                                th scope="col" { "The role may" }
                                th scope="col" { "Organisation key" }
                            }
                        }
                        tbody {
                            @for org in &orgs {
                                tr {
                                    th scope="row" {
                                        a href=(format!("/orgs/{}", org.org_id)) { (org.org_name) }
                                    }
                                    td data-label="Your role" { (org.role) }
                                    td data-label="The role may" { (role_meaning(org.role)) }
                                    td data-label="Organisation key" { (key_mode_text(&org.key_mode)) }
                                }
                            }
                        }
                    }
                }
                p { a href=(super::invitations::ACCEPT_PATH) { "Accept an invitation" } }
            },
        ),
    )
}
